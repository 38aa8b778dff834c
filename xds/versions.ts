import { createHash, randomBytes } from 'node:crypto';

// Snapshot versions are `${epoch}-${counter}`. The epoch is fresh for every process (time
// plus randomness), so a restarted server never produces a version string a client
// already holds; within one epoch the counter orders versions. Delta versions are a hash
// of the resource's encoded bytes, so they survive restarts (no resend after reconnect).

export function newEpoch(nowMs: number = Date.now()): string {
  return `${nowMs.toString(36)}${randomBytes(3).toString('hex')}`;
}

export class VersionCounter {
  private counter = 0;
  constructor(readonly epoch: string = newEpoch()) {
    if (!/^[0-9a-z]+$/.test(epoch)) throw new Error(`epoch "${epoch}" must be lowercase alphanumeric`);
  }
  next(): string {
    this.counter += 1;
    return `${this.epoch}-${this.counter}`;
  }
}

export interface ParsedVersion {
  epoch: string;
  counter: number;
}

/** Parses a snapshot version; transitional or foreign versions give undefined. */
export function parseVersion(version: string): ParsedVersion | undefined {
  const m = /^([0-9a-z]+)-(\d+)$/.exec(version);
  if (!m) return undefined;
  return { epoch: m[1]!, counter: Number(m[2]) };
}

/** Counter of a version including the transitional `-mbb` form, for NACK matching. */
export function counterOf(version: string): ParsedVersion | undefined {
  return parseVersion(version.replace(/-mbb$/, ''));
}

/** True when `have` is the same epoch as `want` and not older. */
export function versionCovers(have: string, want: string): boolean {
  const h = parseVersion(have);
  const w = parseVersion(want);
  if (!h || !w) return have === want;
  return h.epoch === w.epoch && h.counter >= w.counter;
}

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 22);
}
