// Load generator run inside the client pod (same tool for every variant):
//   loadgen http  <url> <connections> <seconds>   keep-alive GETs, requests/s + latency
//   loadgen connect <host> <port> <parallel> <seconds>  full TCP connections/s
// Prints one JSON line. Every socket has a timeout.
import { Agent, request } from 'node:http';
import { connect } from 'node:net';

interface Result { ops: number; errors: number; seconds: number; rate: number; p50Ms: number; p99Ms: number }

function summarize(lat: number[], errors: number, seconds: number): Result {
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : 0);
  return { ops: lat.length, errors, seconds, rate: lat.length / seconds, p50Ms: q(0.5), p99Ms: q(0.99) };
}

async function httpLoad(url: string, conns: number, seconds: number): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const one = () => new Promise<void>((resolve) => {
    const t0 = performance.now();
    const req = request(url, { agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) lat.push(performance.now() - t0);
        else errors++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conns }, async () => {
    while (performance.now() < end) await one();
  }));
  agent.destroy();
  return summarize(lat, errors, (performance.now() - t0) / 1000);
}

async function connectLoad(host: string, port: number, parallel: number, seconds: number): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  // The server closes first, so TIME_WAIT stays on its side and client ports recycle.
  const one = () => new Promise<void>((resolve) => {
    const t0 = performance.now();
    const s = connect({ host, port });
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('error', () => {
      errors++;
      resolve();
    });
    s.on('close', (hadError) => {
      if (!hadError) lat.push(performance.now() - t0);
      resolve();
    });
    s.resume();
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (performance.now() < end) await one();
  }));
  return summarize(lat, errors, (performance.now() - t0) / 1000);
}

const [mode, a, b, c, d] = process.argv.slice(2);
let r: Result;
if (mode === 'http') r = await httpLoad(a!, Number(b), Number(c));
else if (mode === 'connect') r = await connectLoad(a!, Number(b), Number(c), Number(d));
else throw new Error(`loadgen: unknown mode ${mode}`);
console.log(JSON.stringify(r));
