// Upstream for the datapath benchmark, run inside the server pod: an HTTP server
// answering "ok" and a TCP server that closes every connection right away.
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';

const httpPort = Number(process.argv[2]);
const closePort = Number(process.argv[3]);
const body = Buffer.from('ok\n');
const http = createHttp((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
http.keepAliveTimeout = 30_000;
http.listen(httpPort, '0.0.0.0', () => {
  createTcp((s) => s.end()).listen(closePort, '0.0.0.0', () => console.log('ready'));
});
