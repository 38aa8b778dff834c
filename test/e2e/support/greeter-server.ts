// The greeter gRPC service as a pod workload: prints "listening on <port>" once bound.
import { startGreeter } from '../../support/greeter.js';

const g = await startGreeter('0.0.0.0');
process.stdout.write(`listening on ${g.port}\n`);
process.on('SIGTERM', () => void g.close().then(() => process.exit(0)));
