// The node CA on disk across rotations: `<state>/ca` is the CA that signs, `<state>/ca.old`
// the previous one (still trusted until it expires), `<state>/ca.next` a new CA being
// promoted. A rotation writes ca.next completely, then renames ca → ca.old and
// ca.next → ca; an agent that crashed in between finishes the promotion when it opens.
// `ca.old/retire-at` says when the previous CA leaves the trust bundle: once every leaf
// it signed has expired (they are all re-issued by the new CA at the rotation), not when
// the CA itself expires a year later.

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, DEFAULT_IDENTITY_LIFETIME_MS } from './authority.js';

export const CA_DIR = 'ca';
export const PREVIOUS_CA_DIR = 'ca.old';
export const NEXT_CA_DIR = 'ca.next';
/** A CA is replaced once this fraction of its lifetime has passed. */
export const CA_ROTATE_FRACTION = 2 / 3;
/** In the CA directory that becomes ca.old: when it leaves the trust bundle (ISO time). */
export const RETIRE_FILE = 'retire-at';

export interface CaFilesOptions {
  /** The agent's state directory (the CA directories live under it). */
  stateDir: string;
  trustDomain: string;
  caLifetimeMs?: number;
  /** Lifetime of identity certificates: bounds how long the previous CA's leaves live after an interrupted rotation. */
  leafLifetimeMs?: number;
  now?: () => number;
}

export interface RotatingCa {
  ca: CertificateAuthority;
  /** The previous CA while it is still trusted. */
  previous?: CertificateAuthority;
  /** When `previous` leaves the trust bundle (ms); its own expiry when no retire time was written. */
  previousRetiresAt?: number;
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
    const retire = join(o.stateDir, CA_DIR, RETIRE_FILE);
    if (existsSync(join(o.stateDir, CA_DIR)) && !existsSync(retire)) {
      // Every leaf of the current CA was issued before now: they are gone one lifetime later.
      const now = (o.now ?? Date.now)();
      writeFileSync(retire, new Date(now + (o.leafLifetimeMs ?? DEFAULT_IDENTITY_LIFETIME_MS)).toISOString() + '\n');
    }
    promoteNext(o.stateDir);
  }
  const ca = await openAt(o, CA_DIR);
  return { ca, ...(await openPrevious(o)) };
}

function readRetireAt(dir: string): number | undefined {
  try {
    const t = Date.parse(readFileSync(join(dir, RETIRE_FILE), 'utf8').trim());
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

async function openPrevious(o: CaFilesOptions): Promise<{ previous?: CertificateAuthority; previousRetiresAt?: number }> {
  const dir = join(o.stateDir, PREVIOUS_CA_DIR);
  if (!existsSync(dir)) return {};
  let previous: CertificateAuthority;
  try {
    previous = await openAt(o, PREVIOUS_CA_DIR);
  } catch {
    // Expired (or broken): no peer can present a valid certificate of it any more.
    rmSync(dir, { recursive: true, force: true });
    return {};
  }
  // Without a retire time (a crash right after the rename), keep it until it expires.
  const retiresAt = Math.min(readRetireAt(dir) ?? previous.notAfter, previous.notAfter);
  if (previous.now() >= retiresAt) {
    retirePrevious(o.stateDir);
    return {};
  }
  return { previous, previousRetiresAt: retiresAt };
}

/** The previous CA leaves the bundle: its files go. */
export function retirePrevious(stateDir: string): void {
  rmSync(join(stateDir, PREVIOUS_CA_DIR), { recursive: true, force: true });
}

export function caRotationDue(ca: CertificateAuthority, now: number): boolean {
  return now >= ca.createdAt + (ca.notAfter - ca.createdAt) * CA_ROTATE_FRACTION;
}

/** Writes the next CA (ca.next) completely; `promoteCa` makes it the signing CA. */
export async function prepareNextCa(o: CaFilesOptions): Promise<CertificateAuthority> {
  rmSync(join(o.stateDir, NEXT_CA_DIR), { recursive: true, force: true });
  return openAt(o, NEXT_CA_DIR);
}

/**
 * ca → ca.old (retiring at `retiresAt`), ca.next → ca. The retire time is written into the
 * current CA's directory before the renames, so a crash at any point leaves either the old
 * layout (ca.next promoted at the next start) or the new one with its retire time.
 */
export function promoteCa(o: CaFilesOptions, next: CertificateAuthority, current: CertificateAuthority, retiresAt: number): RotatingCa {
  writeFileSync(join(o.stateDir, CA_DIR, RETIRE_FILE), new Date(retiresAt).toISOString() + '\n');
  promoteNext(o.stateDir);
  return { ca: next, previous: current, previousRetiresAt: retiresAt };
}

/** Makes a new CA and promotes it at once; the old one becomes the previous CA. */
export async function rotateCa(o: CaFilesOptions, current: CertificateAuthority, retiresAt = current.notAfter): Promise<RotatingCa> {
  const next = await prepareNextCa(o);
  return promoteCa(o, next, current, retiresAt);
}

/** The previous CA if it is still trusted at `now` (before its retire time and its expiry). */
export function stillValid(previous: CertificateAuthority | undefined, now: number, retiresAt = previous?.notAfter ?? 0): CertificateAuthority | undefined {
  return previous && now < previous.notAfter && now < retiresAt ? previous : undefined;
}
