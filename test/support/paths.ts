import { fileURLToPath } from 'node:url';

/** The repository root, from compiled tests under dist/test/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
