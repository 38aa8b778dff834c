// Maglev table builder against the properties of the Maglev paper (NSDI 2016, §3.4):
// near-perfect balance, minimal disruption when a backend leaves, determinism.
import assert from 'node:assert/strict';
import { buildMaglevTable, isPrime, MAGLEV_DEFAULT_SIZE } from '../../agent/service/maglev.js';
import { MAGLEV_TABLE_SIZE } from '../../addon/index.js';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.1.${i >> 8}.${i & 255}:8080`);

function counts(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const v of table) c[v]!++;
  return c;
}

describe('maglev table', () => {
  it('uses the prime size the datapath is compiled with', () => {
    assert.equal(MAGLEV_DEFAULT_SIZE, MAGLEV_TABLE_SIZE);
    assert.ok(isPrime(MAGLEV_DEFAULT_SIZE));
  });

  for (const [m, n] of [[251, 3], [251, 7], [16381, 5], [16381, 40]] as const) {
    it(`M=${m}, N=${n}: every entry filled, each backend gets floor or ceil of M/N`, () => {
      const t = buildMaglevTable(names(n), m);
      assert.equal(t.length, m);
      assert.ok(t.every((v) => v >= 0 && v < n));
      const c = counts(t, n);
      assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c}`);
      assert.ok(Math.min(...c) >= Math.floor(m / n));
    });
  }

  for (const [m, n] of [[16381, 5], [16381, 10], [251, 4]] as const) {
    it(`M=${m}: removing one of ${n} backends moves about 1/${n} of the entries`, () => {
      const all = names(n);
      const before = buildMaglevTable(all, m);
      for (const gone of [0, n - 1]) {
        const rest = all.filter((_, i) => i !== gone);
        const after = buildMaglevTable(rest, m);
        let moved = 0;
        let movedFromSurvivors = 0;
        for (let i = 0; i < m; i++) {
          const was = all[before[i]!]!;
          const now = rest[after[i]!]!;
          if (was !== now) {
            moved++;
            if (was !== all[gone]) movedFromSurvivors++;
          }
          assert.notEqual(now, all[gone]);
        }
        const share = moved / m;
        // The gone backend's own entries (1/N) must move; the paper reports only a few
        // percent of extra disruption at this table size, far from a full reshuffle.
        assert.ok(share >= 1 / n - 0.01, `moved ${share}`);
        assert.ok(share <= 1 / n + 0.06, `moved ${share} of the entries, expected about ${1 / n}`);
        assert.ok(movedFromSurvivors / m <= 0.06, `survivors lost ${movedFromSurvivors / m}`);
      }
    });
  }

  it('is deterministic and independent of the order of the backends', () => {
    const a = buildMaglevTable(names(6), 251);
    const b = buildMaglevTable(names(6), 251);
    assert.deepEqual(a, b);
    const rev = names(6).reverse();
    const c = buildMaglevTable(rev, 251);
    for (let i = 0; i < 251; i++) assert.equal(rev[c[i]!], names(6)[a[i]!]);
  });

  it('refuses a size that is not a prime, no backends, and duplicate names', () => {
    assert.throws(() => buildMaglevTable(names(2), 250), /250 is not a prime/);
    assert.throws(() => buildMaglevTable([], 251), /no backends/);
    assert.throws(() => buildMaglevTable(['a', 'a'], 251), /distinct/);
  });
});
