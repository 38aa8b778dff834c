// One bench/xds client process: holds its share of the simulated ADS clients and tells
// the harness (over the fork IPC channel) when all of them hold a given version. The
// harness spreads the clients over several such processes so that no single client
// process bounds the fan-out time it measures.
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { RawAdsClient } from './raw-client.js';

type Command =
  | { op: 'connect'; address: string; ids: string[] }
  | { op: 'wait'; seq: number; version: string; resources: number; timeoutMs: number }
  | { op: 'close' };

let clients: RawAdsClient[] = [];
const send = (m: object): void => void process.send!(m);

function waitAll(seq: number, version: string, resources: number, timeoutMs: number): void {
  const match = (c: RawAdsClient) => c.seen.find((s) => s.version === version && s.resources === resources);
  const check = (): boolean => {
    let last = 0;
    let first = Infinity;
    for (const c of clients) {
      const s = match(c);
      if (!s) return false;
      last = Math.max(last, s.at);
      first = Math.min(first, s.at);
    }
    for (const c of clients) c.onResponse = undefined;
    clearTimeout(timer);
    send({ op: 'synced', seq, lastAt: last, firstAt: first });
    return true;
  };
  const timer = setTimeout(() => {
    for (const c of clients) c.onResponse = undefined;
    const missing = clients.filter((c) => !match(c)).map((c) => `${c.nodeId}${c.error ? ` (${c.error.message})` : ''}`);
    send({ op: 'failed', seq, error: `${missing.length} clients without version ${version}: ${missing.slice(0, 3).join(', ')}` });
  }, timeoutMs);
  if (check()) return;
  for (const c of clients) c.onResponse = () => void check();
}

process.on('message', (m: Command) => {
  if (m.op === 'connect') {
    clients = m.ids.map((id) => new RawAdsClient(m.address, id, TypeUrl.Listener));
    send({ op: 'connected' });
  } else if (m.op === 'wait') waitAll(m.seq, m.version, m.resources, m.timeoutMs);
  else {
    for (const c of clients) c.close();
    clients = [];
    send({ op: 'closed' });
  }
});
process.on('disconnect', () => process.exit(0));
