// One HTTP request from inside a pod, for the demo and the connectivity test. Prints
// one JSON line: {"status":..,"body":..} or {"error":"EPERM"} when the socket layer
// refused the connection. Bounded by a timeout, never retries.

import { request } from 'node:http';

const [method = 'GET', url = '', contentType, body] = process.argv.slice(2);
const TIMEOUT_MS = 4000;

const headers: Record<string, string> = {};
if (contentType) headers['content-type'] = contentType;
if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
const req = request(url, { method, headers, timeout: TIMEOUT_MS }, (res) => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  res.on('end', () => {
    process.stdout.write(`${JSON.stringify({ status: res.statusCode, body: text.slice(0, 200) })}\n`);
    process.exit(0);
  });
});
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
req.on('error', (e: NodeJS.ErrnoException) => {
  process.stdout.write(`${JSON.stringify({ error: e.code ?? e.message })}\n`);
  process.exit(0);
});
req.end(body);
