// Types of the compiled binding (addon/src/*.cc) and its loader.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeBpfError extends Error {
  errno?: number;
  code?: string;
  libbpfLog?: string;
  applied?: number;
}

export interface NativeProgramInfo { name: string; section: string }
export interface NativeMapDef { name: string; type: number; keySize: number; valueSize: number; maxEntries: number; pinPath: string | null }
export interface NativeMapInfo { id: number; type: number; keySize: number; valueSize: number; valueBufferSize: number; maxEntries: number; flags: number; path: string }
export interface NativeLinkInfo { id: number; progId: number; type: number; cgroupId?: bigint; attachType?: number }

export interface NativeBpfObject {
  programs(): NativeProgramInfo[];
  maps(): NativeMapDef[];
  setMapPinDir(dir: string): void;
  load(): void;
  attachCgroup(program: string, cgroupDir: string, linkPinPath: string): 'created' | 'replaced';
  close(): void;
}

export interface NativeBpfMap {
  info(): NativeMapInfo;
  lookup(key: Buffer): Buffer | null;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  keys(): Buffer[];
  updateBatch(keys: Buffer, values: Buffer, flags?: number): number;
  close(): void;
}

export interface NativeRingBuffer {
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeBinding {
  BpfObject: new (path: string) => NativeBpfObject;
  BpfMap: new (pinPath: string) => NativeBpfMap;
  RingBuffer: new (pinPath: string, onRecords: (records: Buffer[]) => void) => NativeRingBuffer;
  linkDetach(pinPath: string): void;
  linkInfo(pinPath: string): NativeLinkInfo;
  numPossibleCpus(): number;
  libbpfVersion: string;
}

/** Compiled from dist/addon/native.js or run from addon/ (ts sources next to build/). */
const CANDIDATES = ['../../addon/build/Release/l7mesh_bpf.node', './build/Release/l7mesh_bpf.node'];

let cached: NativeBinding | undefined;

export function loadNative(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  for (const rel of CANDIDATES) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) {
      cached = require(p) as NativeBinding;
      return cached;
    }
  }
  throw new Error(
    'l7mesh BPF addon not built (addon/build/Release/l7mesh_bpf.node missing): run `npm run build` after scripts/setup.sh installed libbpf-dev',
  );
}

export const BPF_MAP_TYPE_LPM_TRIE = 11;
