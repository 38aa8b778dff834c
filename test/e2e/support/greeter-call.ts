// One gRPC call to the greeter, printed as one JSON line. Plaintext from inside a pod,
// or mTLS (--tls ca cert key sni) straight to a hop listener.
//   unary  <target> <SayHello|SayBye> [--tls ...]      → {ok, message} | {code, details}
//   watch  <target> <ms> [--tls ...]                   → {received, code?, details?}
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { GreeterClient, unary } from '../../support/greeter.js';

const [mode, target, arg, flag, ca, cert, key, sni] = process.argv.slice(2);
let creds = grpc.credentials.createInsecure();
const options: grpc.ChannelOptions = {};
if (flag === '--tls') {
  // The hop presents an identity certificate (URI SAN only): check the chain, not a hostname.
  creds = grpc.credentials.createSsl(readFileSync(ca!), readFileSync(key!), readFileSync(cert!), { checkServerIdentity: () => undefined });
  options['grpc.ssl_target_name_override'] = sni!;
}
const client = new GreeterClient(target!, creds, options);
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

if (mode === 'unary') {
  try {
    const r = await unary(client, arg as 'SayHello' | 'SayBye', { name: 'e2e' }, 8000);
    out({ ok: true, message: r.message });
  } catch (e) {
    const err = e as grpc.ServiceError;
    out({ ok: false, code: grpc.status[err.code], details: err.details });
  }
  client.close();
} else {
  // A long-lived server stream: ticks every 100 ms until the client cancels after <ms>.
  const call = (client as unknown as { Watch(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ n: number }> }).Watch({ everyMs: 100 }, new grpc.Metadata());
  let received = 0;
  let failure: grpc.ServiceError | undefined;
  call.on('data', () => received++);
  call.on('error', (e: grpc.ServiceError) => {
    if (e.code !== grpc.status.CANCELLED) failure = e;
  });
  await new Promise((r) => setTimeout(r, Number(arg)));
  call.cancel();
  await new Promise((r) => setTimeout(r, 200));
  out({ received, ...(failure ? { code: grpc.status[failure.code], details: failure.details } : {}) });
  client.close();
}
