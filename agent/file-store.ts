// The embedded store: one JSON file per key under <stateDir>/<bucket>/. A single write
// is atomic by write-to-temp, fsync, rename. A batch first lands as one journal file
// (itself written atomically), is then applied key by key, and the journal removed;
// opening the store replays a journal left by a crash, so a batch is all or nothing.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Bucket, Store, StoreOp } from './store.js';

const BUCKETS: readonly Bucket[] = ['meta', 'endpoints', 'policies', 'identities', 'services', 'secrets'];
const JOURNAL = 'journal.json';

export class FileStore implements Store {
  private tmpCounter = 0;

  private constructor(readonly dir: string) {}

  static open(dir: string): FileStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const b of BUCKETS) mkdirSync(join(dir, b), { recursive: true, mode: 0o700 });
    const s = new FileStore(dir);
    s.replayJournal();
    return s;
  }

  async get<T>(bucket: Bucket, key: string): Promise<T | undefined> {
    try {
      return JSON.parse(readFileSync(this.path(bucket, key), 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`state ${bucket}/${key}: ${(e as Error).message}`);
    }
  }

  async list<T>(bucket: Bucket): Promise<{ key: string; value: T }[]> {
    const names = readdirSync(join(this.dir, bucket)).filter((n) => n.endsWith('.json')).sort();
    const out: { key: string; value: T }[] = [];
    for (const n of names) {
      const key = decodeURIComponent(n.slice(0, -'.json'.length));
      const value = await this.get<T>(bucket, key);
      if (value !== undefined) out.push({ key, value });
    }
    return out;
  }

  async put(bucket: Bucket, key: string, value: unknown): Promise<void> {
    this.writeAtomic(this.path(bucket, key), JSON.stringify(value));
  }

  async delete(bucket: Bucket, key: string): Promise<void> {
    rmSync(this.path(bucket, key), { force: true });
  }

  async batch(ops: StoreOp[]): Promise<void> {
    const journal = join(this.dir, JOURNAL);
    this.writeAtomic(journal, JSON.stringify(ops));
    this.applyOps(ops);
    rmSync(journal, { force: true });
  }

  async close(): Promise<void> {}

  private replayJournal(): void {
    const journal = join(this.dir, JOURNAL);
    let ops: StoreOp[];
    try {
      ops = JSON.parse(readFileSync(journal, 'utf8')) as StoreOp[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      // A journal is only visible once complete (rename), so an unreadable one is corruption.
      throw new Error(`state journal ${journal} is unreadable: ${(e as Error).message}`);
    }
    this.applyOps(ops);
    rmSync(journal, { force: true });
  }

  private applyOps(ops: StoreOp[]): void {
    for (const o of ops) {
      if (o.op === 'put') this.writeAtomic(this.path(o.bucket, o.key), JSON.stringify(o.value));
      else rmSync(this.path(o.bucket, o.key), { force: true });
    }
  }

  private path(bucket: Bucket, key: string): string {
    if (!BUCKETS.includes(bucket)) throw new Error(`unknown state bucket "${bucket}"`);
    if (key === '') throw new Error(`empty key in state bucket ${bucket}`);
    return join(this.dir, bucket, `${encodeURIComponent(key)}.json`);
  }

  private writeAtomic(path: string, text: string): void {
    const tmp = `${path}.tmp-${process.pid}-${this.tmpCounter++}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }
}
