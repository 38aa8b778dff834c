// One HTTPS GET from inside a pod, printed as JSON {status, body} or {error}.
// Args: url ca-file servername (also sent as Host). Verifies the server against ca-file.

import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const [url, caFile, servername] = process.argv.slice(2);
const req = request(url!, { ca: readFileSync(caFile!), servername: servername!, headers: { host: servername! }, timeout: 8000 }, (res) => {
  let body = '';
  res.on('data', (d: Buffer) => (body += d.toString()));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body }) + '\n'));
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (e) => process.stdout.write(JSON.stringify({ error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }) + '\n'));
req.end();
