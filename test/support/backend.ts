// A real HTTP server standing in for a workload; it records every request it serves so
// tests can tell what actually got through the proxy.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Backend {
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startBackend(host: string): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.setHeader('content-type', 'text/plain');
      res.end(`backend ${req.method} ${req.url}\n`);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function httpRequest(
  opts: { host: string; port: number; localAddress: string; method?: string; path: string; headers?: Record<string, string>; body?: string; agent?: http.Agent },
  timeoutMs = 3000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: opts.host, port: opts.port, localAddress: opts.localAddress, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers ?? {}, agent: opts.agent ?? false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${opts.host}:${opts.port}${opts.path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
