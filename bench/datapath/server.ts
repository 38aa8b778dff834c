// Upstream for the datapath benchmark, run inside the server pod: HTTP servers
// answering "ok" (one port for the proxied variants, one for the direct variant, so
// conntrack state of the iptables variant can never capture a direct connection). The
// server that closes every connection at once is `loadgen serve-close`.
import { createServer as createHttp } from 'node:http';

const httpPort = Number(process.argv[2]);
const directPort = Number(process.argv[3]);
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
  direct.listen(directPort, '0.0.0.0', () => console.log('ready'));
});
