// HTTPS from inside a pod that reports which server certificate it saw, printed as JSON
// lines {n, status, body, serial, reused} or {n, error}. Verifies the server against ca-file.
// Args: url ca-file servername [signal-file]
//   without signal-file: one GET on a new connection (a new handshake);
//   with signal-file: a GET, then waits (at most 60 s) for signal-file to exist and sends a
//   second GET on the same kept-alive connection, proving the connection survived.

import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';

const [url, caFile, servername, signal] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(n: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url!, { agent, ca: readFileSync(caFile!), servername: servername!, headers: { host: servername! }, timeout: 8000 }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        process.stdout.write(JSON.stringify({ n, status: res.statusCode, body, serial, reused: req.reusedSocket }) + '\n');
        resolve(true);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => {
      process.stdout.write(JSON.stringify({ n, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }) + '\n');
      resolve(false);
    });
    req.end();
  });
}

async function main(): Promise<void> {
  if (!(await get(1)) || !signal) return;
  const deadline = Date.now() + 60_000;
  while (!existsSync(signal) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await get(2);
}

main().finally(() => agent.destroy());
