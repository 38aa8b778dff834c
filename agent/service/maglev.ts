// Maglev consistent hashing (Eisenbud et al., NSDI 2016): every backend walks its own
// permutation of the table, given by an offset and a skip derived from its name, and
// the backends take turns claiming their next free entry until the table is full.
// Pure and deterministic: the same backend names give the same table in any order.
import { createHash } from 'node:crypto';

/** The datapath's table size (bpf/include/lb_maps.h L7M_LB_MAGLEV_M). */
export const MAGLEV_DEFAULT_SIZE = 16381;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function hash32(seed: string, name: string): number {
  return createHash('sha256').update(seed).update('\0').update(name).digest().readUInt32LE(0);
}

/**
 * Builds the lookup table: entry i holds an index into `names`. `names` must be
 * distinct and non-empty; `size` a prime larger than the number of names.
 */
export function buildMaglevTable(names: readonly string[], size = MAGLEV_DEFAULT_SIZE): Int32Array {
  if (!isPrime(size)) throw new RangeError(`maglev table size: ${size} is not a prime`);
  if (names.length === 0) throw new RangeError('maglev: no backends');
  if (names.length >= size) throw new RangeError(`maglev: ${names.length} backends need a table larger than ${size}`);
  if (new Set(names).size !== names.length) throw new RangeError('maglev: backend names must be distinct');
  // Sorting makes the table independent of the order the caller lists backends in.
  const order = names.map((n, i) => [n, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const offset = order.map(([n]) => hash32('offset', n) % size);
  const skip = order.map(([n]) => (hash32('skip', n) % (size - 1)) + 1);
  const next = new Array<number>(order.length).fill(0);
  const table = new Int32Array(size).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < order.length; i++) {
      let c = (offset[i]! + next[i]! * skip[i]!) % size;
      while (table[c]! >= 0) {
        next[i]!++;
        c = (offset[i]! + next[i]! * skip[i]!) % size;
      }
      table[c] = order[i]![1];
      next[i]!++;
      if (++filled === size) return table;
    }
  }
}
