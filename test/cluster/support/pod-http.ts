// Runs inside a pod. `serve <port> <lifetimeMs>`: an HTTP server answering every request
// 200 "hello <path>" (prints "listening"). `get <url> <timeoutMs>`: one GET, prints
// `<status> <body>` or `fail <reason>`.
import { createServer, get } from 'node:http';

const [mode, a, b] = process.argv.slice(2);
if (mode === 'serve') {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello ${req.url}`);
  });
  server.listen(Number(a), '0.0.0.0', () => process.stdout.write('listening\n'));
  // Bounded life: a test that forgets it cannot leave it running for long.
  setTimeout(() => process.exit(0), Number(b ?? 600_000)).unref();
} else if (mode === 'get') {
  const timeout = Number(b ?? 3000);
  let done = false;
  const finish = (line: string) => {
    if (done) return;
    done = true;
    process.stdout.write(`${line}\n`);
    process.exit(0);
  };
  setTimeout(() => finish('fail timeout'), timeout);
  const req = get(a!, { timeout, agent: false }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d.toString()));
    res.on('end', () => finish(`${res.statusCode} ${body.replace(/\s+/g, ' ').trim()}`));
  });
  req.on('error', (e: NodeJS.ErrnoException) => finish(`fail ${e.code ?? e.message}`));
} else {
  process.stderr.write(`pod-http: mode "${mode}" is not one of serve, get\n`);
  process.exit(2);
}
