// The service load-balancing maps (bpf/include/lb_maps.h): typed handles and the one
// validated writer that replaces a service as a whole. Nothing is written when any
// field is invalid; the write order keeps every intermediate state consistent for the
// datapath (backends before the slots and table that name them, the service entry
// after both, stale rows removed last).
import { join } from 'node:path';
import { loadNative } from './native.js';
import { TypedMap, nodePinDir } from './datapath.js';
import { u32Key, Proto } from './layouts.js';
import type { ProtoName } from './layouts.js';
import { FakeTypedMap } from './fake.js';
import type { MapLike } from './fake.js';
import { DatapathInputError } from './writers.js';
import {
  LB_C_CONSTANTS, LB_MAP_NAMES, LbAlgorithm, LbBackendState, MAGLEV_TABLE_SIZE, lbCodecs, maglevTableCodec,
} from './lb-layouts.js';
import type {
  LbAffinity, LbAffinityKey, LbAlgorithmName, LbBackend, LbBackendStateName, LbRevnat, LbRevnatKey, LbService, LbSlotKey, LbSvcKey,
} from './lb-layouts.js';

export interface LbMapsLike {
  readonly services: MapLike<LbSvcKey, LbService>;
  readonly backends: MapLike<number, LbBackend>;
  readonly slots: MapLike<LbSlotKey, number>;
  readonly maglev: MapLike<number, Uint32Array>;
  readonly affinity: MapLike<LbAffinityKey, LbAffinity>;
  readonly revnat: MapLike<LbRevnatKey, LbRevnat>;
}

/** The pinned LB maps of one node (created by Datapath.load with the other maps). */
export class LbMaps implements LbMapsLike {
  readonly services: TypedMap<LbSvcKey, LbService>;
  readonly backends: TypedMap<number, LbBackend>;
  readonly slots: TypedMap<LbSlotKey, number>;
  readonly maglev: TypedMap<number, Uint32Array>;
  readonly affinity: TypedMap<LbAffinityKey, LbAffinity>;
  readonly revnat: TypedMap<LbRevnatKey, LbRevnat>;

  constructor(readonly mapsDir: string) {
    const n = loadNative();
    const open = (name: string) => {
      try {
        return new n.BpfMap(join(mapsDir, name));
      } catch (e) {
        throw new Error(`open map ${name}: ${(e as Error).message}`);
      }
    };
    this.services = new TypedMap(LB_MAP_NAMES.services, open(LB_MAP_NAMES.services), lbCodecs.svcKey, lbCodecs.service);
    this.backends = new TypedMap(LB_MAP_NAMES.backends, open(LB_MAP_NAMES.backends), u32Key, lbCodecs.backend);
    this.slots = new TypedMap(LB_MAP_NAMES.slots, open(LB_MAP_NAMES.slots), lbCodecs.slotKey, u32Key);
    this.maglev = new TypedMap(LB_MAP_NAMES.maglev, open(LB_MAP_NAMES.maglev), u32Key, maglevTableCodec);
    this.affinity = new TypedMap(LB_MAP_NAMES.affinity, open(LB_MAP_NAMES.affinity), lbCodecs.affinityKey, lbCodecs.affinity);
    this.revnat = new TypedMap(LB_MAP_NAMES.revnat, open(LB_MAP_NAMES.revnat), lbCodecs.revnatKey, lbCodecs.revnat);
  }

  static open(node: string): LbMaps {
    return new LbMaps(join(nodePinDir(node), 'maps'));
  }

  close(): void {
    for (const m of [this.services, this.backends, this.slots, this.maglev, this.affinity, this.revnat]) m.close();
  }
}

export class FakeLbMaps implements LbMapsLike {
  readonly services = new FakeTypedMap<LbSvcKey, LbService>();
  readonly backends = new FakeTypedMap<number, LbBackend>();
  readonly slots = new FakeTypedMap<LbSlotKey, number>();
  readonly maglev = new FakeTypedMap<number, Uint32Array>();
  readonly affinity = new FakeTypedMap<LbAffinityKey, LbAffinity>();
  readonly revnat = new FakeTypedMap<LbRevnatKey, LbRevnat>();
}

export interface LbBackendEntry {
  /** one id per service membership, non-zero */
  id: number;
  ip: string;
  port: number;
  state: LbBackendStateName;
}

export interface LbServiceEntry {
  /** non-zero, below 2^16 (events carry it in 16 bits) */
  svcId: number;
  vip: string;
  port: number;
  proto: ProtoName;
  algorithm: LbAlgorithmName;
  /** ClientIP session affinity timeout in seconds; 0 = no affinity */
  affinityTimeoutS: number;
  backends: LbBackendEntry[];
  /** maglev only: MAGLEV_TABLE_SIZE backend ids, each an active backend of this service */
  maglevTable?: Uint32Array;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function validateService(s: LbServiceEntry): string[] {
  const errors: string[] = [];
  const check = (ok: boolean, path: string, reason: string) => {
    if (!ok) errors.push(`${path}: ${reason}`);
  };
  check(isInt(s.svcId, 1, 0xffff), 'service.svcId', 'must be an integer in [1, 65535]');
  check(typeof s.vip === 'string' && IPV4_RE.test(s.vip), 'service.vip', 'must be an IPv4 address');
  check(isInt(s.port, 1, 0xffff), 'service.port', 'must be an integer in [1, 65535]');
  check(s.proto in Proto, 'service.proto', `must be one of ${Object.keys(Proto).join(', ')}`);
  check(s.algorithm in LbAlgorithm, 'service.algorithm', `must be one of ${Object.keys(LbAlgorithm).join(', ')}`);
  check(isInt(s.affinityTimeoutS, 0, 0xffffffff), 'service.affinityTimeoutS', 'must be an integer >= 0 (0 = no affinity)');
  const ids = new Set<number>();
  (Array.isArray(s.backends) ? s.backends : []).forEach((b, i) => {
    const p = `service.backends[${i}]`;
    check(isInt(b.id, 1, 0xffffffff), `${p}.id`, 'must be an integer in [1, 2^32)');
    check(!ids.has(b.id), `${p}.id`, `duplicate backend id ${b.id}`);
    ids.add(b.id);
    check(typeof b.ip === 'string' && IPV4_RE.test(b.ip), `${p}.ip`, 'must be an IPv4 address');
    check(isInt(b.port, 1, 0xffff), `${p}.port`, 'must be an integer in [1, 65535]');
    check(b.state in LbBackendState, `${p}.state`, `must be one of ${Object.keys(LbBackendState).join(', ')}`);
  });
  check(Array.isArray(s.backends), 'service.backends', 'must be a list');
  if (s.algorithm === 'maglev') {
    const active = new Set((s.backends ?? []).filter((b) => b.state === 'active').map((b) => b.id));
    const t = s.maglevTable;
    if (!(t instanceof Uint32Array) || t.length !== MAGLEV_TABLE_SIZE) {
      errors.push(`service.maglevTable: must hold ${MAGLEV_TABLE_SIZE} backend ids for algorithm maglev`);
    } else if (active.size > 0) {
      const bad = t.findIndex((id) => !active.has(id));
      check(bad < 0, `service.maglevTable[${bad}]`, `backend id ${t[bad]} is not an active backend of the service`);
    }
  } else {
    check(s.maglevTable === undefined, 'service.maglevTable', 'only valid with algorithm maglev');
  }
  return errors;
}

const svcKeyOf = (s: Pick<LbServiceEntry, 'vip' | 'port' | 'proto'>): LbSvcKey => ({ vip: s.vip, port: s.port, proto: Proto[s.proto] });

/** Writes (or replaces) one service with its backends. */
export function replaceService(maps: LbMapsLike, s: LbServiceEntry): { backends: number; active: number } {
  const errors = validateService(s);
  if (errors.length) throw new DatapathInputError(errors);
  const active = s.backends.filter((b) => b.state === 'active');
  const row = (b: LbBackendEntry) => [b.id, { ip: b.ip, port: b.port, state: LbBackendState[b.state], svcId: s.svcId }] as const;
  // A backend leaves the slots and the table before it stops being active, so a pick
  // racing this write still lands on a backend that takes the connection.
  maps.backends.updateMany(active.map(row));
  if (active.length) maps.slots.updateMany(active.map((b, slot) => [{ svcId: s.svcId, slot }, b.id] as const));
  if (s.algorithm === 'maglev' && active.length) maps.maglev.update(s.svcId, s.maglevTable!);
  maps.services.update(svcKeyOf(s), {
    svcId: s.svcId,
    count: active.length,
    algorithm: LbAlgorithm[s.algorithm],
    flags: s.affinityTimeoutS > 0 ? LB_C_CONSTANTS.L7M_LB_SVC_AFFINITY : 0,
    affinityTimeoutS: s.affinityTimeoutS,
  });
  maps.backends.updateMany(s.backends.filter((b) => b.state !== 'active').map(row));
  for (const k of maps.slots.keys()) if (k.svcId === s.svcId && k.slot >= active.length) maps.slots.delete(k);
  if (s.algorithm !== 'maglev' || !active.length) maps.maglev.delete(s.svcId);
  const ids = new Set(s.backends.map((b) => b.id));
  for (const [id, b] of maps.backends.entries()) if (b.svcId === s.svcId && !ids.has(id)) maps.backends.delete(id);
  return { backends: s.backends.length, active: active.length };
}

/** Removes a service: new connections stop at once; open sockets keep their reverse translation. */
export function deleteService(maps: LbMapsLike, s: { svcId: number; vip: string; port: number; proto: ProtoName }): void {
  maps.services.delete(svcKeyOf(s));
  for (const k of maps.slots.keys()) if (k.svcId === s.svcId) maps.slots.delete(k);
  maps.maglev.delete(s.svcId);
  for (const [id, b] of maps.backends.entries()) if (b.svcId === s.svcId) maps.backends.delete(id);
  for (const k of maps.affinity.keys()) if (k.svcId === s.svcId) maps.affinity.delete(k);
}
