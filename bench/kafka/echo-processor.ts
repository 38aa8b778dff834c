// The Node counterpart of echo-go: l7mesh's processor transport (grpc-bidi-server.ts on
// node:http2) answering every message with its own bytes, no Kafka logic, no audit. The
// gap between this and echo-go is the runtime's; between this and l7mesh, the Kafka work.
// Exploration only (bench/kafka/produce.ts --echo).
//   node dist/bench/kafka/echo-processor.js /path/to/processor.sock
import { GrpcBidiServer } from '../../l7/kafka/grpc-bidi-server.js';
import { MAX_PROCESSING_REQUEST_BYTES, PROCESS_PATH, PROCESSOR_WINDOW_BYTES } from '../../l7/kafka/ext-proc-server.js';

const path = process.argv[2];
if (!path) {
  console.error('usage: echo-processor.js <unix socket path>');
  process.exit(2);
}
// A ProcessingRequest holding only read_data (1) or write_data (2) is, byte for byte, the
// ProcessingResponse that forwards that Data unchanged.
const server = new GrpcBidiServer({ path: PROCESS_PATH, maxMessageBytes: MAX_PROCESSING_REQUEST_BYTES, windowBytes: PROCESSOR_WINDOW_BYTES }, (call) => {
  call.on('message', (m: Buffer) => call.write([m]));
});
await server.listenUnix(path);
console.log(JSON.stringify({ unix: path }));
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
