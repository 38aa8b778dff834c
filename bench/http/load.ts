// A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending
// the next request as soon as the previous response is complete. Raw sockets keep the
// client cheap, so the proxy, not the tool, is what gets measured.
import net from 'node:net';

export interface LoadOptions {
  host: string;
  port: number;
  localAddress?: string;
  connections: number;
  durationMs: number;
  warmupMs: number;
  request: string;
  /** Per-connection read timeout; a stuck connection is counted as an error and replaced. */
  timeoutMs?: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let measuring = false;
  let running = true;
  const start = Date.now();
  const sockets = new Set<net.Socket>();

  const worker = () =>
    new Promise<void>((resolve) => {
      const open = () => {
        if (!running) return resolve();
        const sock = net.connect({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
        sockets.add(sock);
        sock.setNoDelay(true);
        sock.setTimeout(o.timeoutMs ?? 5000);
        let buf = Buffer.alloc(0);
        let sentAt = 0n;
        const send = () => {
          sentAt = process.hrtime.bigint();
          sock.write(o.request);
        };
        sock.on('connect', send);
        sock.on('data', (d) => {
          buf = buf.length ? Buffer.concat([buf, d]) : d;
          for (;;) {
            const head = buf.indexOf('\r\n\r\n');
            if (head === -1) return;
            const headers = buf.subarray(0, head).toString('latin1');
            const cl = /\r\ncontent-length: *(\d+)/i.exec(headers);
            const total = head + 4 + (cl ? Number(cl[1]) : 0);
            if (buf.length < total) return;
            const status = Number(headers.slice(9, 12));
            buf = buf.subarray(total);
            if (measuring) {
              latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
              if (status < 200 || status >= 300) non2xx++;
            }
            if (!running) {
              sock.destroy();
              return;
            }
            send();
          }
        });
        const fail = () => {
          sockets.delete(sock);
          sock.destroy();
          if (measuring) errors++;
          setTimeout(open, 10);
        };
        sock.on('timeout', fail);
        sock.on('error', () => undefined);
        sock.on('close', () => {
          if (sockets.has(sock)) fail();
        });
      };
      open();
    });

  const workers = Array.from({ length: o.connections }, worker);
  await new Promise((r) => setTimeout(r, o.warmupMs));
  measuring = true;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, o.durationMs));
  measuring = false;
  const elapsed = Date.now() - t0;
  running = false;
  for (const s of sockets) {
    sockets.delete(s);
    s.destroy();
  }
  await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 1000))]);
  void start;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! : 0);
  return { requests: latencies.length, rps: (latencies.length / elapsed) * 1000, p50Ms: q(0.5), p99Ms: q(0.99), errors, non2xx };
}
