// TypeScript mirror of bpf/include/lb_maps.h (service load balancing), checked against
// BTF and the header's #defines by test/kernel/layouts.test.ts like layouts.ts.
import { codec, checkInt, struct } from './layouts.js';
import type { Codec } from './layouts.js';

export const LB_LAYOUTS = {
  lbSvcKey: struct('l7m_lb_svc_key', 8, [
    ['vip', 'vip', 0, 'ip4'],
    ['port', 'port', 4, 'port_be'],
    ['proto', 'proto', 6, 'u8'],
    ['pad', 'pad', 7, 'u8'],
  ]),
  lbService: struct('l7m_lb_service', 16, [
    ['svcId', 'svc_id', 0, 'u32'],
    ['count', 'count', 4, 'u32'],
    ['algorithm', 'algorithm', 8, 'u8'],
    ['flags', 'flags', 9, 'u8'],
    ['pad', 'pad', 10, 'u16'],
    ['affinityTimeoutS', 'affinity_timeout_s', 12, 'u32'],
  ]),
  lbSlotKey: struct('l7m_lb_slot_key', 8, [
    ['svcId', 'svc_id', 0, 'u32'],
    ['slot', 'slot', 4, 'u32'],
  ]),
  lbBackend: struct('l7m_lb_backend', 12, [
    ['ip', 'ip', 0, 'ip4'],
    ['port', 'port', 4, 'port_be'],
    ['state', 'state', 6, 'u8'],
    ['pad', 'pad', 7, 'u8'],
    ['svcId', 'svc_id', 8, 'u32'],
  ]),
  lbAffinityKey: struct('l7m_lb_affinity_key', 8, [
    ['clientIp', 'client_ip', 0, 'ip4'],
    ['svcId', 'svc_id', 4, 'u32'],
  ]),
  lbAffinity: struct('l7m_lb_affinity', 16, [
    ['lastNs', 'last_ns', 0, 'u64'],
    ['backendId', 'backend_id', 8, 'u32'],
    ['pad', 'pad', 12, 'u32'],
  ]),
  lbRevnatKey: struct('l7m_lb_revnat_key', 16, [
    ['cookie', 'cookie', 0, 'u64'],
    ['backendIp', 'backend_ip', 8, 'ip4'],
    ['backendPort', 'backend_port', 12, 'port_be'],
    ['pad', 'pad', 14, 'u16'],
  ]),
  lbRevnat: struct('l7m_lb_revnat', 8, [
    ['vip', 'vip', 0, 'ip4'],
    ['port', 'port', 4, 'port_be'],
    ['svcId', 'svc_id', 6, 'u16'],
  ]),
  lbSock: struct('l7m_lb_sock', 16, [
    ['backendIp', 'backend_ip', 0, 'ip4'],
    ['backendPort', 'backend_port', 4, 'port_be'],
    ['svcId', 'svc_id', 6, 'u16'],
    ['vip', 'vip', 8, 'ip4'],
    ['port', 'port', 12, 'port_be'],
    ['pad', 'pad', 14, 'u16'],
  ]),
  lbSockrev: struct('l7m_lb_sockrev', 24, [
    ['cookie', 'cookie', 0, 'u64'],
    ['backendIp', 'backend_ip', 8, 'ip4'],
    ['backendPort', 'backend_port', 12, 'port_be'],
    ['svcId', 'svc_id', 14, 'u16'],
    ['vip', 'vip', 16, 'ip4'],
    ['port', 'port', 20, 'port_be'],
    ['pad', 'pad', 22, 'u16'],
  ]),
} as const;

export const LB_MAP_NAMES = {
  services: 'l7m_lb_services_v1',
  backends: 'l7m_lb_backends_v1',
  slots: 'l7m_lb_slots_v1',
  maglev: 'l7m_lb_maglev_v1',
  affinity: 'l7m_lb_affinity_v1',
  revnat: 'l7m_lb_revnat_v1',
  /** socket storage: only the kernel reads it (user space would need the socket) */
  sock: 'l7m_lb_sock_v1',
  /** connected TCP sockets' reverse translation, slot = socket cookie & (slots - 1) */
  sockrev: 'l7m_lb_sockrev_v1',
} as const;

export const LB_C_CONSTANTS = {
  L7M_LB_MAX_SERVICES: 4096,
  L7M_LB_MAX_BACKENDS: 65536,
  L7M_LB_MAX_MAGLEV: 256,
  L7M_LB_MAX_AFFINITY: 65536,
  L7M_LB_MAX_REVNAT: 65536,
  L7M_LB_SOCKREV_SLOTS: 262144,
  L7M_LB_MAGLEV_M: 16381,
  L7M_LB_ALG_RANDOM: 0,
  L7M_LB_ALG_MAGLEV: 1,
  L7M_LB_SVC_AFFINITY: 1,
  L7M_LB_BE_ACTIVE: 1,
  L7M_LB_BE_DRAINING: 2,
} as const;

/** The Maglev table size the datapath is compiled with. */
export const MAGLEV_TABLE_SIZE = LB_C_CONSTANTS.L7M_LB_MAGLEV_M;
export const LbAlgorithm = { random: 0, maglev: 1 } as const;
export type LbAlgorithmName = keyof typeof LbAlgorithm;
export const LbBackendState = { active: 1, draining: 2 } as const;
export type LbBackendStateName = keyof typeof LbBackendState;

export interface LbSvcKey { vip: string; port: number; proto: number }
export interface LbService { svcId: number; count: number; algorithm: number; flags: number; affinityTimeoutS: number }
export interface LbSlotKey { svcId: number; slot: number }
export interface LbBackend { ip: string; port: number; state: number; svcId: number }
export interface LbRevnatKey { cookie: bigint; backendIp: string; backendPort: number }
export interface LbRevnat { vip: string; port: number; svcId: number }
export interface LbAffinityKey { clientIp: string; svcId: number }
export interface LbAffinity { lastNs: bigint; backendId: number }

/** A whole Maglev lookup table: backend id per entry. */
export const maglevTableCodec: Codec<Uint32Array> = {
  layout: { c: 'l7m_lb_maglev', size: MAGLEV_TABLE_SIZE * 4, fields: [] },
  encode: (v) => {
    if (v.length !== MAGLEV_TABLE_SIZE) throw new RangeError(`l7m_lb_maglev: table has ${v.length} entries, the datapath needs ${MAGLEV_TABLE_SIZE}`);
    const b = Buffer.alloc(MAGLEV_TABLE_SIZE * 4);
    v.forEach((id, i) => b.writeUInt32LE(checkInt(`l7m_lb_maglev.backend_ids[${i}]`, id, 0, 0xffffffff), i * 4));
    return b;
  },
  decode: (b) => {
    const out = new Uint32Array(MAGLEV_TABLE_SIZE);
    for (let i = 0; i < MAGLEV_TABLE_SIZE; i++) out[i] = b.readUInt32LE(i * 4);
    return out;
  },
};

export const lbCodecs = {
  svcKey: codec<LbSvcKey>(LB_LAYOUTS.lbSvcKey),
  service: codec<LbService>(LB_LAYOUTS.lbService),
  slotKey: codec<LbSlotKey>(LB_LAYOUTS.lbSlotKey),
  backend: codec<LbBackend>(LB_LAYOUTS.lbBackend),
  affinityKey: codec<LbAffinityKey>(LB_LAYOUTS.lbAffinityKey),
  affinity: codec<LbAffinity>(LB_LAYOUTS.lbAffinity),
  revnatKey: codec<LbRevnatKey>(LB_LAYOUTS.lbRevnatKey),
  revnat: codec<LbRevnat>(LB_LAYOUTS.lbRevnat),
  sock: codec<LbRevnat & { backendIp: string; backendPort: number }>(LB_LAYOUTS.lbSock),
  sockrev: codec<LbRevnat & { cookie: bigint; backendIp: string; backendPort: number }>(LB_LAYOUTS.lbSockrev),
};
