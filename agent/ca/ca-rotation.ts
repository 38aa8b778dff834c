// The node CA on disk across rotations: `<state>/ca` is the CA that signs, `<state>/ca.old`
// the previous one (still trusted until it expires), `<state>/ca.next` a new CA being
// promoted. A rotation writes ca.next completely, then renames ca → ca.old and
// ca.next → ca; an agent that crashed in between finishes the promotion when it opens.

import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from './authority.js';

export const CA_DIR = 'ca';
export const PREVIOUS_CA_DIR = 'ca.old';
export const NEXT_CA_DIR = 'ca.next';
/** A CA is replaced once this fraction of its lifetime has passed. */
export const CA_ROTATE_FRACTION = 2 / 3;

export interface CaFilesOptions {
  /** The agent's state directory (the CA directories live under it). */
  stateDir: string;
  trustDomain: string;
  caLifetimeMs?: number;
  now?: () => number;
}

export interface RotatingCa {
  ca: CertificateAuthority;
  /** The previous CA while it is still valid. */
  previous?: CertificateAuthority;
}

function openAt(o: CaFilesOptions, dir: string): Promise<CertificateAuthority> {
  return CertificateAuthority.open({
    stateDir: join(o.stateDir, dir),
    trustDomain: o.trustDomain,
    ...(o.caLifetimeMs !== undefined ? { caLifetimeMs: o.caLifetimeMs } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
}

function promoteNext(stateDir: string): void {
  const cur = join(stateDir, CA_DIR);
  if (existsSync(cur)) {
    rmSync(join(stateDir, PREVIOUS_CA_DIR), { recursive: true, force: true });
    renameSync(cur, join(stateDir, PREVIOUS_CA_DIR));
  }
  renameSync(join(stateDir, NEXT_CA_DIR), cur);
}

/** Opens the current CA (created on first use) and the previous one if it is still valid. */
export async function openRotatingCa(o: CaFilesOptions): Promise<RotatingCa> {
  if (existsSync(join(o.stateDir, NEXT_CA_DIR))) {
    // A rotation was interrupted after ca.next was complete: finish it. An incomplete
    // ca.next fails to open and is an error, never silently replaced.
    await openAt(o, NEXT_CA_DIR);
    promoteNext(o.stateDir);
  }
  const ca = await openAt(o, CA_DIR);
  return { ca, ...(await openPrevious(o)) };
}

async function openPrevious(o: CaFilesOptions): Promise<{ previous?: CertificateAuthority }> {
  const dir = join(o.stateDir, PREVIOUS_CA_DIR);
  if (!existsSync(dir)) return {};
  try {
    return { previous: await openAt(o, PREVIOUS_CA_DIR) };
  } catch {
    // Expired (or broken): no peer can present a valid certificate of it any more.
    rmSync(dir, { recursive: true, force: true });
    return {};
  }
}

export function caRotationDue(ca: CertificateAuthority, now: number): boolean {
  return now >= ca.createdAt + (ca.notAfter - ca.createdAt) * CA_ROTATE_FRACTION;
}

/** Makes a new CA and promotes it; the old one becomes the previous CA. */
export async function rotateCa(o: CaFilesOptions, current: CertificateAuthority): Promise<RotatingCa> {
  rmSync(join(o.stateDir, NEXT_CA_DIR), { recursive: true, force: true });
  const next = await openAt(o, NEXT_CA_DIR);
  promoteNext(o.stateDir);
  return { ca: next, previous: current };
}

/** The previous CA if it is still valid at `now`. */
export function stillValid(previous: CertificateAuthority | undefined, now: number): CertificateAuthority | undefined {
  return previous && now < previous.notAfter ? previous : undefined;
}
