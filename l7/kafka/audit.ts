// One audit record per Kafka request decision, written as JSON lines for security teams
// and handed to listeners (the flow pipeline subscribes here).
import { createWriteStream, type WriteStream } from 'node:fs';

export interface KafkaAuditRecord {
  time: string;
  /** Numeric security identity of the client, when known. */
  identity: number | null;
  /** The policy (rule set) the decision was taken under. */
  policy: string;
  clientId: string | null;
  apiKey: string;
  apiKeyNum: number;
  apiVersion: number;
  correlationId: number;
  topics: string[];
  /** Consumer groups the request names (group APIs, FindCoordinator, transactional offset commits). */
  groups?: string[];
  verdict: 'allow' | 'deny';
  /** Index of the granting rule, or null for a denial. */
  rule: number | null;
  reason?: string;
  /**
   * For a denial: the Kafka error code the client received in l7mesh's error response
   * (29 topic, 30 group, 31 cluster, 53 transactional id authorization failed). Absent
   * when no response was owed (acks=0 Produce, dropped) or the connection was closed.
   */
  errorCode?: number;
  /** For a denial without an error response: `dropped` (acks=0) or `closed`. */
  outcome?: 'dropped' | 'closed';
}

/** How late a JSON line may reach the file (listeners get every record at once). */
export const AUDIT_FLUSH_MS = 20;
/** Bytes of JSON lines gathered before a write (a line longer than this gets its own). */
export const AUDIT_BATCH_BYTES = 64 * 1024;

export type AuditListener = (rec: KafkaAuditRecord) => void;

export class KafkaAuditLog {
  private readonly listeners: AuditListener[] = [];
  private stream: WriteStream | null = null;

  /** `path` receives one JSON object per line; omit it to keep records in memory only. */
  constructor(path?: string) {
    if (path) this.stream = createWriteStream(path, { flags: 'a' });
  }

  onRecord(fn: AuditListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  write(rec: KafkaAuditRecord): void {
    if (this.stream) {
      // Lines go to the file in batches, at most AUDIT_FLUSH_MS late, instead of one
      // write each: a write per request showed up in the processor's profile. Each line
      // is copied into the batch's bytes at once, so its string dies young; strings
      // kept for the batch outlived the young generation and drove V8's major GC.
      const line = JSON.stringify(rec) + '\n';
      const need = Buffer.byteLength(line);
      if (this.batch && this.batchUsed + need > this.batch.length) this.flush();
      if (!this.batch) {
        this.batch = Buffer.allocUnsafe(Math.max(AUDIT_BATCH_BYTES, need));
        this.batchUsed = 0;
        this.timer = setTimeout(() => this.flush(), AUDIT_FLUSH_MS);
      }
      this.batchUsed += this.batch.write(line, this.batchUsed);
    }
    for (const fn of this.listeners) fn(rec);
  }

  private batch: Buffer | null = null;
  private batchUsed = 0;
  private timer: NodeJS.Timeout | null = null;

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.batch;
    this.batch = null;
    if (!batch || this.batchUsed === 0 || !this.stream) return;
    this.stream.write(batch.subarray(0, this.batchUsed));
  }

  close(): Promise<void> {
    this.flush();
    const s = this.stream;
    this.stream = null;
    return new Promise((resolve) => (s ? s.end(resolve) : resolve()));
  }
}
