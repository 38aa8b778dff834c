import { fileURLToPath } from 'node:url';

/** The repository root, from a compiled file under dist/test/support/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
