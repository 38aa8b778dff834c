// The one-request helpers run in pods print what they got as one JSON line:
// {status, body} or {error}.

import type { ClientRequest } from 'node:http';

/** Sends `req` (created with a timeout) and prints its answer or error as one JSON line. */
export function sendAndPrint(req: ClientRequest): void {
  req.on('response', (res) => {
    let body = '';
    res.on('data', (d: Buffer) => (body += d.toString()));
    res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body }) + '\n'));
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.on('error', (e) => process.stdout.write(JSON.stringify({ error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }) + '\n'));
  req.end();
}
