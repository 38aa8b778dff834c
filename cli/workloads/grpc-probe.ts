// One gRPC call from inside a pod, for the connectivity test. Prints one JSON line:
// {"grpcStatus":0,"message":..} when the call completed (any status), or
// {"error":"EPERM"} when the connection itself failed (the socket layer refused it,
// or nothing answered before the deadline). Bounded by a deadline, never retries.

import * as grpc from '@grpc/grpc-js';
import { greeterDefinition, type GreeterMethod } from './grpc-greeter.js';

const [target = '', method = 'SayHello'] = process.argv.slice(2);
const DEADLINE_MS = 4000;

function done(o: object): never {
  process.stdout.write(`${JSON.stringify(o)}\n`);
  process.exit(0);
}

if (!(method in greeterDefinition)) done({ error: `unknown method ${method}` });
const Client = grpc.makeGenericClientConstructor(greeterDefinition, 'Greeter');
// One connection attempt: without this grpc-js retries a refused connect until the deadline.
const client = new Client(target, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0, 'grpc.initial_reconnect_backoff_ms': 60_000 });
const call = (client as unknown as Record<GreeterMethod, (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { message: string }) => void) => void>)[method as GreeterMethod];
call.call(client, { name: 'l7mesh' }, new grpc.Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
  if (!err) done({ grpcStatus: 0, message: res?.message ?? '' });
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    // The transport never got a call through: name the socket error when there is one.
    const m = /\b(EPERM|EACCES|ECONNREFUSED|ECONNRESET|ETIMEDOUT)\b/.exec(err.details ?? '');
    done({ error: m ? m[1] : err.code === grpc.status.DEADLINE_EXCEEDED ? 'ETIMEDOUT' : `UNAVAILABLE: ${err.details}` });
  }
  done({ grpcStatus: err.code, message: err.details });
});
