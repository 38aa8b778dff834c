// A minimal server-sent-events reader for tests: collects events from a GET stream and
// lets a test wait for one that satisfies a predicate, always with a timeout.

import http from 'node:http';

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

export interface SseClient {
  events: SseEvent[];
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Resolves with the first event (already received or future) matching pred. */
  waitFor(pred: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Stops reading from the socket (the server's writes back up) until resume(). */
  pause(): void;
  resume(): void;
  close(): void;
}

export function openSse(url: string, connectTimeoutMs = 5000): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const waiters: (() => void)[] = [];
    const req = http.get(url, { headers: { accept: 'text/event-stream' }, timeout: connectTimeoutMs }, (res) => {
      req.setTimeout(0);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e: SseEvent = { event: 'message', data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':') || line === '') continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'event') e.event = value;
            else if (field === 'id') e.id = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length === 0) continue;
          e.data = data.join('\n');
          events.push(e);
          for (const w of waiters.splice(0)) w();
        }
      });
      resolve({
        events,
        status: res.statusCode ?? 0,
        headers: res.headers,
        waitFor(pred, timeoutMs = 8000) {
          return new Promise((ok, fail) => {
            const check = () => {
              const hit = events.find(pred);
              if (hit) {
                clearTimeout(t);
                ok(hit);
                return true;
              }
              return false;
            };
            const t = setTimeout(() => fail(new Error(`no matching SSE event within ${timeoutMs} ms (got ${events.length}: ${events.map((x) => x.event).join(',')})`)), timeoutMs);
            const loop = () => {
              if (!check()) waiters.push(loop);
            };
            loop();
          });
        },
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      });
    });
    req.on('timeout', () => req.destroy(new Error(`SSE ${url}: no response within ${connectTimeoutMs} ms`)));
    req.on('error', reject);
  });
}
