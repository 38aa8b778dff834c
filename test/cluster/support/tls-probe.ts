// Runs inside a test namespace: one mTLS connection to a hop listener, then one GET over
// it. `tls-probe <host> <port> <sni> <cert> <key> <ca> <path> <timeoutMs>` prints
// `<status line>` or `fail <reason>` (a refused client certificate arrives as an alert
// after the TLS 1.3 handshake, so the request is what tells).
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [host, port, sni, cert, key, ca, path, timeout] = process.argv.slice(2);
let done = false;
const finish = (line: string) => {
  if (done) return;
  done = true;
  process.stdout.write(`${line}\n`);
  process.exit(0);
};
setTimeout(() => finish('fail timeout'), Number(timeout ?? 5000));
const s = tls.connect({
  host,
  port: Number(port),
  servername: sni,
  cert: readFileSync(cert!),
  key: readFileSync(key!),
  ca: readFileSync(ca!),
  checkServerIdentity: () => undefined,
});
s.once('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n`));
let buf = '';
s.on('data', (d: Buffer) => {
  buf += d.toString();
  const i = buf.indexOf('\r\n');
  if (i >= 0) finish(buf.slice(0, i));
});
s.on('error', (e: NodeJS.ErrnoException) => finish(`fail ${e.code ?? ''} ${e.message}`));
s.on('close', () => finish(`fail closed ${buf.slice(0, 80)}`));
