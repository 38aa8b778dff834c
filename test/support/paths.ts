import { fileURLToPath } from 'node:url';

/** The repository root, from a compiled file under dist/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
