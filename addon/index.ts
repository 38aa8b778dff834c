// Public facade of the BPF datapath for the agent and the CLI.
export * from './layouts.js';
export * from './datapath.js';
export * from './writers.js';
export * from './fake.js';
export { loadNative } from './native.js';
export type { NativeBpfError, NativeLinkInfo, NativeRingBuffer } from './native.js';
export * from './lb-layouts.js';
export * from './lb-writers.js';
