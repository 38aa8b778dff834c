// The agent's handle on the BPF datapath: loads bpf/.output/l7mesh.bpf.o with its maps
// pinned under /sys/fs/bpf/l7mesh/<node>/maps, attaches programs to cgroups as pinned
// links under .../links/<attachment>/, and exposes typed map access and events.
// Loading again over existing pins adopts them: maps are reused by libbpf and every
// link is updated in place (atomic program replacement).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative, BPF_MAP_TYPE_LPM_TRIE } from './native.js';
import type { NativeBpfMap, NativeLinkInfo, NativeRingBuffer } from './native.js';
import {
  codecs, u32Key, u64Key, MAP_NAMES, EVENT_TYPES, HOOKS, DROP_REASONS, C_CONSTANTS,
} from './layouts.js';
import type {
  Codec, DatapathConfig, EndpointInfo, IpcacheKey, IpcacheValue, OrigDst, PolicyKey, PolicyValue, RawEvent, Tuple4,
} from './layouts.js';

export const BPFFS_ROOT = '/sys/fs/bpf';
export const PIN_BASE = join(BPFFS_ROOT, 'l7mesh');
export const DEFAULT_OBJECT = fileURLToPath(new URL('../../bpf/.output/l7mesh.bpf.o', import.meta.url));

/** Programs attached to every workload cgroup. */
export const WORKLOAD_PROGRAMS = [
  'l7m_connect4', 'l7m_connect6', 'l7m_sendmsg4', 'l7m_sendmsg6', 'l7m_recvmsg4',
  'l7m_getpeername4', 'l7m_sockops', 'l7m_ingress_skb', 'l7m_egress_skb',
] as const;
/** Programs attached to the proxy's cgroup. */
export const PROXY_PROGRAMS = ['l7m_getsockopt', 'l7m_sockops_proxy'] as const;

const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ATTACH_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export class DatapathError extends Error {
  constructor(message: string, readonly errno?: number, readonly libbpfLog?: string) {
    super(message);
    this.name = 'DatapathError';
  }
}

/** Lists what this kernel/machine lacks for the datapath, each naming the feature. */
export function missingKernelFeatures(): string[] {
  const missing: string[] = [];
  if (!existsSync('/sys/kernel/btf/vmlinux')) missing.push('kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF) is missing');
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  if (!/ cgroup2 /.test(mounts) && !readFileSync('/proc/filesystems', 'utf8').includes('cgroup2')) {
    missing.push('cgroup v2 filesystem is not available');
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('bpf')) missing.push('bpf filesystem (bpffs) is not available');
  if (process.getuid?.() !== 0) missing.push('root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) is required');
  return missing;
}

/** Mounts bpffs at /sys/fs/bpf when nothing is mounted there yet. */
export function ensureBpffs(): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  if (mounts.some((l) => l.split(' ')[1] === BPFFS_ROOT && l.split(' ')[2] === 'bpf')) return;
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS_ROOT], { stdio: 'pipe' });
  } catch (e) {
    throw new DatapathError(`bpf filesystem: cannot mount bpffs at ${BPFFS_ROOT}: ${(e as Error).message}`);
  }
}

export function nodePinDir(node: string): string {
  if (!NODE_NAME_RE.test(node)) throw new RangeError(`node: "${node}" must match ${NODE_NAME_RE}`);
  return join(PIN_BASE, node);
}

function wrapNative<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as Error & { errno?: number; libbpfLog?: string };
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new DatapathError(`${what}: ${err.message}`, err.errno, err.libbpfLog);
  }
}

/** A pinned map with typed keys and values. */
export class TypedMap<K, V> {
  constructor(
    readonly name: string,
    private readonly map: NativeBpfMap,
    private readonly key: Codec<K>,
    private readonly value: Codec<V>,
  ) {}

  lookup(k: K): V | null {
    const raw = wrapNative(`${this.name} lookup`, () => this.map.lookup(this.key.encode(k)));
    return raw ? this.value.decode(raw) : null;
  }

  update(k: K, v: V): void {
    const kb = this.key.encode(k);
    const vb = this.value.encode(v);
    wrapNative(`${this.name} update`, () => this.map.update(kb, vb));
  }

  delete(k: K): boolean {
    return wrapNative(`${this.name} delete`, () => this.map.delete(this.key.encode(k)));
  }

  keys(): K[] {
    return wrapNative(`${this.name} iterate`, () => this.map.keys()).map((b) => this.key.decode(b));
  }

  /** Entries present now; an entry deleted while iterating is skipped. */
  entries(): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    for (const kb of wrapNative(`${this.name} iterate`, () => this.map.keys())) {
      const vb = wrapNative(`${this.name} lookup`, () => this.map.lookup(kb));
      if (vb) out.push([this.key.decode(kb), this.value.decode(vb)]);
    }
    return out;
  }

  /**
   * Writes all entries. Every entry is encoded (and so validated) before the first
   * write; the kernel's batch update is used where the map type has one (hash,
   * array), single updates elsewhere (LPM trie).
   */
  updateMany(entries: ReadonlyArray<readonly [K, V]>): number {
    const keys = entries.map(([k]) => this.key.encode(k));
    const values = entries.map(([, v]) => this.value.encode(v));
    if (entries.length === 0) return 0;
    const info = this.map.info();
    if (info.type !== BPF_MAP_TYPE_LPM_TRIE) {
      return wrapNative(`${this.name} batch update`, () => this.map.updateBatch(Buffer.concat(keys), Buffer.concat(values)));
    }
    keys.forEach((kb, i) => wrapNative(`${this.name} update`, () => this.map.update(kb, values[i]!)));
    return keys.length;
  }

  close(): void {
    this.map.close();
  }
}

export interface DatapathEvent {
  type: 'drop' | 'redirect' | 'allow';
  hook: string;
  reason: string | null;
  reasonCode: number;
  direction: 'egress' | 'ingress';
  proto: 'tcp' | 'udp' | number;
  endpointId: number;
  cgroupId: bigint;
  srcIdentity: number;
  dstIdentity: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proxyPort: number;
  /** the service (lb) the workload dialled; 0 = it dialled the address directly */
  svcId: number;
  ruleCookie: number;
  tsNs: bigint;
}

export function decodeEvent(buf: Buffer): DatapathEvent {
  const r: RawEvent = codecs.event.decode(buf);
  return {
    type: EVENT_TYPES[r.type] ?? 'drop',
    hook: HOOKS[r.hook] ?? `hook-${r.hook}`,
    reason: r.reason === 0 ? null : DROP_REASONS[r.reason] ?? `drop-${r.reason}`,
    reasonCode: r.reason,
    direction: r.direction === C_CONSTANTS.L7M_DIR_INGRESS ? 'ingress' : 'egress',
    proto: r.proto === 6 ? 'tcp' : r.proto === 17 ? 'udp' : r.proto,
    endpointId: r.endpointId,
    cgroupId: r.cgroupId,
    srcIdentity: r.srcIdentity,
    dstIdentity: r.dstIdentity,
    saddr: r.saddr,
    daddr: r.daddr,
    sport: r.sport,
    dport: r.dport,
    proxyPort: r.proxyPort,
    svcId: r.svcId,
    ruleCookie: r.ruleCookie,
    tsNs: r.tsNs,
  };
}

export interface EventStats { emitted: bigint; rateLimited: bigint; ringbufFull: bigint }

/** Typed access to the pinned maps of one node; works without loading programs. */
export class DatapathMaps {
  readonly endpoints: TypedMap<bigint, EndpointInfo>;
  readonly ipcache: TypedMap<IpcacheKey, IpcacheValue>;
  readonly policy: TypedMap<PolicyKey, PolicyValue>;
  readonly config: TypedMap<number, DatapathConfig>;
  readonly sockOrigDst: TypedMap<bigint, OrigDst>;
  readonly tupleOrigDst: TypedMap<Tuple4, OrigDst>;
  private readonly stats: NativeBpfMap;

  constructor(readonly mapsDir: string) {
    const n = loadNative();
    const open = (name: string) => wrapNative(`open map ${name}`, () => new n.BpfMap(join(mapsDir, name)));
    this.endpoints = new TypedMap(MAP_NAMES.endpoints, open(MAP_NAMES.endpoints), u64Key, codecs.endpointInfo);
    this.ipcache = new TypedMap(MAP_NAMES.ipcache, open(MAP_NAMES.ipcache), codecs.ipcacheKey, codecs.ipcacheValue);
    this.policy = new TypedMap(MAP_NAMES.policy, open(MAP_NAMES.policy), codecs.policyKey, codecs.policyValue);
    this.config = new TypedMap(MAP_NAMES.config, open(MAP_NAMES.config), u32Key, codecs.config);
    this.sockOrigDst = new TypedMap(MAP_NAMES.sockOrigDst, open(MAP_NAMES.sockOrigDst), u64Key, codecs.origDst);
    this.tupleOrigDst = new TypedMap(MAP_NAMES.tupleOrigDst, open(MAP_NAMES.tupleOrigDst), codecs.tuple4, codecs.origDst);
    this.stats = open(MAP_NAMES.eventStats);
  }

  /** Sums the per-CPU event counters (emitted, rate-limited, ring buffer full). */
  eventStats(): EventStats {
    const slot = (i: number): bigint => {
      const raw = this.stats.lookup(u32Key.encode(i));
      let sum = 0n;
      if (raw) for (let o = 0; o + 8 <= raw.length; o += 8) sum += raw.readBigUInt64LE(o);
      return sum;
    };
    return {
      emitted: slot(C_CONSTANTS.L7M_STAT_EMITTED),
      rateLimited: slot(C_CONSTANTS.L7M_STAT_RATE_LIMITED),
      ringbufFull: slot(C_CONSTANTS.L7M_STAT_RINGBUF_FULL),
    };
  }

  /** Calls onEvents from the event loop whenever the kernel submitted events. */
  subscribe(onEvents: (events: DatapathEvent[]) => void): NativeRingBuffer {
    const n = loadNative();
    return wrapNative('open event ring buffer', () =>
      new n.RingBuffer(join(this.mapsDir, MAP_NAMES.events), (records) => onEvents(records.map(decodeEvent))));
  }

  close(): void {
    for (const m of [this.endpoints, this.ipcache, this.policy, this.config, this.sockOrigDst, this.tupleOrigDst]) m.close();
    this.stats.close();
  }
}

export interface AttachResult { program: string; action: 'created' | 'replaced' }

/**
 * One node's datapath. `load` opens the object and creates or adopts the pinned maps;
 * attachments are pinned links named by the caller (e.g. the endpoint id).
 */
export class Datapath {
  readonly pinDir: string;
  readonly mapsDir: string;
  readonly linksDir: string;
  readonly maps: DatapathMaps;
  private obj: ReturnType<typeof createObject> | null;

  private constructor(node: string, obj: ReturnType<typeof createObject>) {
    this.pinDir = nodePinDir(node);
    this.mapsDir = join(this.pinDir, 'maps');
    this.linksDir = join(this.pinDir, 'links');
    this.obj = obj;
    this.maps = new DatapathMaps(this.mapsDir);
  }

  static load(node: string, objectPath = DEFAULT_OBJECT): Datapath {
    const missing = missingKernelFeatures();
    if (missing.length) throw new DatapathError(`kernel features missing: ${missing.join('; ')}`);
    if (!existsSync(objectPath)) throw new DatapathError(`BPF object ${objectPath} not built (run npm run build)`);
    ensureBpffs();
    const dir = nodePinDir(node);
    mkdirSync(join(dir, 'maps'), { recursive: true });
    mkdirSync(join(dir, 'links'), { recursive: true });
    const obj = createObject(objectPath);
    try {
      wrapNative('pin maps', () => obj.setMapPinDir(join(dir, 'maps')));
      wrapNative(`load ${objectPath}`, () => obj.load());
      return new Datapath(node, obj);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /** Opens an already loaded node's pinned maps (e.g. for the CLI) without loading. */
  static openMaps(node: string): DatapathMaps {
    return new DatapathMaps(join(nodePinDir(node), 'maps'));
  }

  /**
   * Attaches (or atomically replaces) the given programs on a cgroup as pinned links
   * under links/<name>/. Links created by a failing call are removed again.
   */
  attach(programs: readonly string[], cgroupDir: string, name: string): AttachResult[] {
    if (!ATTACH_NAME_RE.test(name)) throw new RangeError(`attachment name: "${name}" must match ${ATTACH_NAME_RE}`);
    const obj = this.obj;
    if (!obj) throw new DatapathError('datapath is closed');
    const dir = join(this.linksDir, name);
    mkdirSync(dir, { recursive: true });
    const done: AttachResult[] = [];
    try {
      for (const p of programs) {
        const action = wrapNative(`attach ${p} to ${cgroupDir}`, () => obj.attachCgroup(p, cgroupDir, join(dir, p)));
        done.push({ program: p, action });
      }
    } catch (e) {
      // Roll back only the links this call created; replaced ones keep enforcing.
      for (const d of done) if (d.action === 'created') safeDetach(join(dir, d.program));
      throw e;
    }
    return done;
  }

  /** Attaches (or atomically replaces) the workload programs on a workload cgroup. */
  attachWorkload(cgroupDir: string, name: string): AttachResult[] {
    return this.attach(WORKLOAD_PROGRAMS, cgroupDir, name);
  }

  /** Attaches the proxy-side programs (SO_ORIGINAL_DST, upstream tracking). */
  attachProxy(cgroupDir: string, name = 'proxy'): AttachResult[] {
    return this.attach(PROXY_PROGRAMS, cgroupDir, name);
  }

  close(): void {
    this.obj?.close();
    this.obj = null;
    this.maps.close();
  }
}

function createObject(path: string) {
  const n = loadNative();
  return wrapNative(`open ${path}`, () => new n.BpfObject(path));
}

function safeDetach(pin: string): void {
  try {
    loadNative().linkDetach(pin);
  } catch {
    // Already gone: nothing to roll back.
  }
}

/** Detaches every pinned link of an attachment (a workload or the proxy). */
export function detachAttachment(node: string, name: string): void {
  const dir = join(nodePinDir(node), 'links', name);
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) wrapNative(`detach ${name}/${f}`, () => loadNative().linkDetach(join(dir, f)));
  rmdirSync(dir);
}

export function linkInfo(node: string, name: string, program: string): NativeLinkInfo {
  return wrapNative(`link ${name}/${program}`, () => loadNative().linkInfo(join(nodePinDir(node), 'links', name, program)));
}
