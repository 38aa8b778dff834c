// Steady traffic from inside a pod for the restart test: one GET every interval for a
// duration, each with a timeout; prints one JSON summary {"<status or error>": count}.

import { request } from 'node:http';

const [url = '', durationMs = '5000', intervalMs = '100'] = process.argv.slice(2);
const TIMEOUT_MS = 3000;
const counts: Record<string, number> = {};
const end = Date.now() + Number(durationMs);

function once(): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end();
  });
}

while (Date.now() < end) {
  const r = await once();
  counts[r] = (counts[r] ?? 0) + 1;
  await new Promise((res) => setTimeout(res, Number(intervalMs)));
}
process.stdout.write(`${JSON.stringify(counts)}\n`);
