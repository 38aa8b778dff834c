// Runs inside a pod: a TCP server that answers every connection with "ok\n" and closes it.
import { createServer } from 'node:net';

const port = Number(process.argv[2]);
const server = createServer((s) => {
  s.on('error', () => undefined);
  s.end('ok\n');
});
server.listen(port, '0.0.0.0', () => process.stdout.write('listening\n'));
// Bounded life: a test that forgets it cannot leave it running for long.
setTimeout(() => process.exit(0), Number(process.argv[3] ?? 600_000)).unref();
