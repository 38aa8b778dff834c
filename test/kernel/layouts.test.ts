// The TypeScript layouts (addon/layouts.ts) against the C header: struct layouts via
// the BTF that clang emits for bpf/layouts.bpf.c, constants and map names by parsing
// bpf/include/l7mesh_maps.h, map key/value sizes via the loaded object's definitions.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/paths.js';
import {
  LAYOUTS, C_CONSTANTS, MAP_NAMES, fieldSize, codecs, loadNative, LB_LAYOUTS, LB_C_CONSTANTS, LB_MAP_NAMES, lbCodecs,
  maglevTableCodec,
} from '../../addon/index.js';
import type { FieldKind } from '../../addon/index.js';

interface BtfMember { name: string; type_id: number; bits_offset: number }
interface BtfType { id: number; kind: string; name?: string; size?: number; type_id?: number; encoding?: string; members?: BtfMember[] }

const HEADERS = [join(repoRoot, 'bpf/include/l7mesh_maps.h'), join(repoRoot, 'bpf/include/lb_maps.h')];
const ALL_LAYOUTS = { ...LAYOUTS, ...LB_LAYOUTS };
const ALL_CONSTANTS = { ...C_CONSTANTS, ...LB_C_CONSTANTS };
const ALL_MAP_NAMES = { ...MAP_NAMES, ...LB_MAP_NAMES };
const LAYOUT_OBJ = join(repoRoot, 'bpf/.output/layouts.bpf.o');

function loadBtf(): Map<number, BtfType> {
  let out: string;
  try {
    out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', LAYOUT_OBJ]).toString();
  } catch (e) {
    throw new Error(`bpftool could not read BTF of ${LAYOUT_OBJ} (run npm run build): ${(e as Error).message}`);
  }
  const types = (JSON.parse(out) as { types: BtfType[] }).types;
  return new Map(types.map((t) => [t.id, t]));
}

/** Follows typedefs and qualifiers to the INT/STRUCT/ARRAY underneath. */
function resolve(btf: Map<number, BtfType>, id: number): BtfType {
  let t = btf.get(id);
  while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT'].includes(t.kind)) t = btf.get(t.type_id!);
  if (!t) throw new Error(`BTF type ${id} missing`);
  return t;
}

function expectedInt(kind: FieldKind): { size: number; signed: boolean } {
  return { size: fieldSize(kind), signed: kind === 's32' };
}

/** Evaluates the simple constant expressions the header uses: -133, (1u << 2), (256 * 1024). */
function evalDefine(expr: string): number {
  const clean = expr.replace(/\/\*.*?\*\//g, '').replace(/(\d+)u\b/g, '$1').trim();
  if (!/^[\d\s()<*+-]+$/.test(clean)) throw new Error(`unsupported #define expression: ${expr}`);
  return Function(`"use strict"; return (${clean});`)() as number;
}

function parseDefines(): Map<string, string> {
  const defs = new Map<string, string>();
  for (const line of HEADERS.flatMap((h) => readFileSync(h, 'utf8').split('\n'))) {
    const m = /^#define\s+(L7M_\w+)\s+(.+?)\s*(\/\*.*)?$/.exec(line);
    if (m) defs.set(m[1]!, m[2]!);
  }
  return defs;
}

describe('kernel: TypeScript map layouts match the C header', () => {
  const btf = loadBtf();
  const byName = new Map([...btf.values()].filter((t) => t.kind === 'STRUCT').map((t) => [t.name!, t]));

  for (const [tsName, layout] of Object.entries(ALL_LAYOUTS)) {
    it(`${tsName} mirrors struct ${layout.c}`, () => {
      const s = byName.get(layout.c);
      assert.ok(s, `struct ${layout.c} is not in the header's BTF`);
      assert.equal(layout.size, s.size, `sizeof(struct ${layout.c})`);
      const cMembers = (s.members ?? []).map((m) => {
        const t = resolve(btf, m.type_id);
        return { c: m.name, offset: m.bits_offset / 8, size: t.size, signed: t.encoding === 'SIGNED' };
      });
      const tsMembers = layout.fields.map((f) => ({ c: f.c, offset: f.offset, ...expectedInt(f.kind) }));
      assert.deepEqual(tsMembers, cMembers);
    });
  }

  it('every header struct has a TypeScript layout', () => {
    const mirrored = new Set(Object.values(ALL_LAYOUTS).map((l) => l.c));
    const inHeader = [...byName.keys()].filter((n) => n.startsWith('l7m_'));
    assert.deepEqual(inHeader.filter((n) => !mirrored.has(n)), []);
  });

  it('numeric constants equal their #defines', () => {
    const defs = parseDefines();
    for (const [name, value] of Object.entries(ALL_CONSTANTS)) {
      const expr = defs.get(name);
      assert.ok(expr !== undefined, `${name} is not defined in the header`);
      assert.equal(evalDefine(expr), value, name);
    }
  });

  it('pinned map names equal the L7M_MAP_* macros', () => {
    const defs = parseDefines();
    const fromHeader = [...defs].filter(([k]) => k.startsWith('L7M_MAP_')).map(([, v]) => v).sort();
    assert.deepEqual(Object.values(ALL_MAP_NAMES).sort(), fromHeader);
  });

  it('the compiled datapath object declares its maps with the mirrored key/value sizes', () => {
    const n = loadNative();
    const obj = new n.BpfObject(join(repoRoot, 'bpf/.output/l7mesh.bpf.o'));
    try {
      const maps = new Map(obj.maps().map((m) => [m.name, m]));
      const expect: Array<[string, number, number]> = [
        [MAP_NAMES.endpoints, 8, codecs.endpointInfo.layout.size],
        [MAP_NAMES.ipcache, codecs.ipcacheKey.layout.size, codecs.ipcacheValue.layout.size],
        [MAP_NAMES.policy, codecs.policyKey.layout.size, codecs.policyValue.layout.size],
        [MAP_NAMES.config, 4, codecs.config.layout.size],
        [MAP_NAMES.sockOrigDst, 8, codecs.origDst.layout.size],
        [MAP_NAMES.tupleOrigDst, codecs.tuple4.layout.size, codecs.origDst.layout.size],
        [MAP_NAMES.proxyFlows, codecs.tuple4.layout.size, 8],
        [MAP_NAMES.udpFlows, codecs.tuple4.layout.size, 8],
        [LB_MAP_NAMES.services, lbCodecs.svcKey.layout.size, lbCodecs.service.layout.size],
        [LB_MAP_NAMES.backends, 4, lbCodecs.backend.layout.size],
        [LB_MAP_NAMES.slots, lbCodecs.slotKey.layout.size, 4],
        [LB_MAP_NAMES.maglev, 4, maglevTableCodec.layout.size],
        [LB_MAP_NAMES.affinity, lbCodecs.affinityKey.layout.size, lbCodecs.affinity.layout.size],
        [LB_MAP_NAMES.revnat, lbCodecs.revnatKey.layout.size, lbCodecs.revnat.layout.size],
        [LB_MAP_NAMES.sock, 4, lbCodecs.sock.layout.size],
        [LB_MAP_NAMES.sockrev, 4, lbCodecs.sockrev.layout.size],
      ];
      for (const [name, k, v] of expect) {
        const m = maps.get(name);
        assert.ok(m, `map ${name} missing from the object`);
        assert.deepEqual([m.keySize, m.valueSize], [k, v], name);
      }
      assert.deepEqual([...maps.keys()].filter((k) => !k.startsWith('.')).sort(), Object.values(ALL_MAP_NAMES).sort());
    } finally {
      obj.close();
    }
  });
});
