// The connectivity test's gRPC server workload: answers SayHello and SayBye on the port
// given, on every address of its pod. Prints one line once it listens.

import * as grpc from '@grpc/grpc-js';
import { greeterDefinition } from './grpc-greeter.js';

const port = Number(process.argv[2] ?? '50051');
const server = new grpc.Server();
const answer = (word: string) => (call: grpc.ServerUnaryCall<{ name?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { message: `${word} ${call.request?.name ?? ''}`.trim() });
server.addService(greeterDefinition, { SayHello: answer('hello'), SayBye: answer('bye') });
server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    process.stderr.write(`grpc server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening on ${bound}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
