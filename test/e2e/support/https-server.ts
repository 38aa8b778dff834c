// A TLS origin for the TLS end-to-end test: answers every request with JSON naming what
// reached it (method, path, SNI), and appends each path to stdout so the test sees whether
// a denied request ever arrived. Args: port cert-file key-file.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';

const [port, cert, key] = process.argv.slice(2);
const server = createServer({ cert: readFileSync(cert!), key: readFileSync(key!) }, (req, res) => {
  const sock = req.socket as TLSSocket;
  process.stdout.write(`seen ${req.method} ${req.url}\n`);
  const body = JSON.stringify({ method: req.method, path: req.url, encrypted: sock.encrypted === true, servername: (sock as { servername?: string }).servername ?? null });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(Number(port), '0.0.0.0', () => process.stdout.write(`listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
