// Plain HTTP servers on several ports answering JSON {port, path}; prints "listening" once
// all of them are up. Args: port...

import { createServer } from 'node:http';

const ports = process.argv.slice(2).map(Number);
let up = 0;
for (const port of ports) {
  const server = createServer((req, res) => {
    const body = JSON.stringify({ port, path: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(port, '0.0.0.0', () => {
    if (++up === ports.length) process.stdout.write(`listening on ${ports.join(',')}\n`);
  });
}
