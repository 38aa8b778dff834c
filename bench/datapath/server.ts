// Upstream for the datapath benchmark, run inside the server pod: HTTP servers
// answering "ok" (one port for the proxied variants, one for the direct variant, so
// conntrack state of the iptables variant can never capture a direct connection) and
// a TCP server that closes every connection right away.
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';

const httpPort = Number(process.argv[2]);
const closePort = Number(process.argv[3]);
const directPort = Number(process.argv[4]);
const body = Buffer.from('ok\n');
const handler = (_req: unknown, res: import('node:http').ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
};
const http = createHttp(handler);
http.keepAliveTimeout = 30_000;
const direct = createHttp(handler);
direct.keepAliveTimeout = 30_000;
http.listen(httpPort, '0.0.0.0', () => {
  direct.listen(directPort, '0.0.0.0', () => {
    createTcp((s) => s.end()).listen(closePort, '0.0.0.0', () => console.log('ready'));
  });
});
