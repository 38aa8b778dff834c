// The demo's web-server workload: answers /api/v1/* and /api/v2/* with JSON naming
// the request, so a verdict table can show what reached the server.

import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? '80');
const server = createServer((req, res) => {
  let size = 0;
  req.on('data', (c: Buffer) => (size += c.length));
  req.on('end', () => {
    const ok = /^\/api\/v[12]\//.test(req.url ?? '');
    const body = JSON.stringify(ok ? { served: `${req.method} ${req.url}`, bytes: size } : { error: 'no such page' });
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(port, '0.0.0.0', () => process.stdout.write(`listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
