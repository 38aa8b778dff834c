// A bounded in-memory ring of flow records with live subscribers. Flow records follow
// Hubble's field names (observe/flow.ts); the buffer only reads the few fields filters use.
// A slow subscriber never blocks producers: it gets dropped records counted instead.

export interface FlowRecord {
  time: string;
  verdict: string;
  /** Hubble's event type: L3_L4, L7, ... */
  Type?: string;
  source?: { identity?: number; labels?: string[]; pod_name?: string };
  destination?: { identity?: number; labels?: string[]; pod_name?: string };
  l7?: { type?: string; http?: { code?: number; method?: string; url?: string }; kafka?: unknown };
  drop_reason_desc?: string;
  [k: string]: unknown;
}

export interface FlowFilter {
  verdict?: string[];
  /** drop | trace | l7, as `monitor --type` and `observe --type` take them. */
  type?: string;
  sinceMs?: number;
  fromLabel?: string[];
  toLabel?: string[];
  httpStatus?: number;
  protocol?: string;
}

export type FlowListener = (f: FlowRecord) => void;

export class FlowBuffer {
  private readonly ring: (FlowRecord | undefined)[];
  private next = 0;
  private count = 0;
  private readonly listeners = new Set<FlowListener>();
  /** Flows seen since start (the ring keeps only the last `capacity`). */
  total = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array(capacity);
  }

  push(f: FlowRecord): void {
    this.ring[this.next] = f;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.total++;
    for (const l of this.listeners) {
      try {
        l(f);
      } catch {
        // A failing subscriber (closed stream) must not hurt producers or other subscribers.
        this.listeners.delete(l);
      }
    }
  }

  /** Matching flows, oldest first, at most `last` of them. */
  query(filter: FlowFilter, last = this.capacity): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let i = 0; i < this.count; i++) {
      const f = this.ring[(this.next - this.count + i + this.capacity) % this.capacity]!;
      if (matchesFlow(f, filter)) out.push(f);
    }
    return out.slice(Math.max(0, out.length - last));
  }

  subscribe(l: FlowListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get size(): number {
    return this.count;
  }
}

export function matchesFlow(f: FlowRecord, q: FlowFilter): boolean {
  if (q.verdict?.length && !q.verdict.includes(String(f.verdict).toUpperCase())) return false;
  if (q.sinceMs !== undefined && Date.parse(f.time) < q.sinceMs) return false;
  if (q.type) {
    const isL7 = f.l7 !== undefined || f.Type === 'L7';
    if (q.type === 'l7' && !isL7) return false;
    if (q.type === 'drop' && f.verdict !== 'DROPPED') return false;
    if (q.type === 'trace' && (isL7 || f.verdict === 'DROPPED')) return false;
  }
  if (q.fromLabel?.length && !q.fromLabel.every((l) => hasLabel(f.source?.labels, l))) return false;
  if (q.toLabel?.length && !q.toLabel.every((l) => hasLabel(f.destination?.labels, l))) return false;
  if (q.httpStatus !== undefined && f.l7?.http?.code !== q.httpStatus) return false;
  if (q.protocol) {
    const p = q.protocol.toLowerCase();
    const l7type = f.l7?.kafka ? 'kafka' : f.l7?.http ? 'http' : undefined;
    const l4 = (f.l4 ? Object.keys(f.l4 as object)[0] : undefined)?.toLowerCase();
    if (p !== l7type && p !== l4) return false;
  }
  return true;
}

/** `k=v` matches a label `source:k=v` from any source, or exactly when a source is given. */
function hasLabel(labels: string[] | undefined, want: string): boolean {
  if (!labels) return false;
  return labels.some((l) => l === want || l.slice(l.indexOf(':') + 1) === want);
}
