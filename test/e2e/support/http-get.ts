// One plain HTTP GET from inside a pod, printed as JSON {status, body} or {error}. Args: url

import { request } from 'node:http';

const req = request(process.argv[2]!, { timeout: 8000 }, (res) => {
  let body = '';
  res.on('data', (d: Buffer) => (body += d.toString()));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body }) + '\n'));
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (e) => process.stdout.write(JSON.stringify({ error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }) + '\n'));
req.end();
