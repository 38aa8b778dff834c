// Runs inside a pod: connects to host:port every intervalMs (each attempt bounded by
// timeoutMs) and prints one line per attempt: `ok <ms>` when "ok" came back, else
// `fail <reason>`. Stops after maxAttempts or when killed.
import { connect } from 'node:net';

const [host, portText, intervalText, timeoutText, maxText] = process.argv.slice(2);
const port = Number(portText);
const interval = Number(intervalText ?? 100);
const timeout = Number(timeoutText ?? 700);
const max = Number(maxText ?? 3000);

function attempt(): Promise<string> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let data = '';
    let done = false;
    const finish = (line: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(line);
    };
    const s = connect({ host, port });
    const timer = setTimeout(() => finish('fail timeout'), timeout);
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => finish(data.startsWith('ok') ? `ok ${Date.now() - t0}` : 'fail bad-answer'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(`fail ${e.code ?? e.message}`));
  });
}

for (let i = 0; i < max; i++) {
  const started = Date.now();
  process.stdout.write(`${await attempt()}\n`);
  const wait = interval - (Date.now() - started);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
