/**
 * @module test/helpers/interop
 * Which real peers (Debian packages) this machine has, and the skip policy of the interop tests:
 * a missing package skips the test with a reason on a developer machine, but under CI (env `CI`
 * set and not "false"/"0") the test runs and fails, because `.ci/run` installs every package.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The Debian packages the interop tests use, each with a file that proves it is installed. */
export const PACKAGE_PROBES = {
  postfix: ['/usr/sbin/postfix', '/usr/lib/postfix/sbin/master'],
  swaks: ['/usr/bin/swaks'],
  'dovecot-imapd': ['/usr/sbin/dovecot', '/usr/lib/dovecot/imap'],
  'dovecot-lmtpd': ['/usr/sbin/dovecot', '/usr/lib/dovecot/lmtp'],
  openssl: ['/usr/bin/openssl'],
  python3: ['python3'],
} as const;

export type InteropPackage = keyof typeof PACKAGE_PROBES;

function executable(file: string): boolean {
  const candidates = file.includes('/')
    ? [file]
    : (process.env['PATH'] ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((d) => path.join(d, file));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env['CI'];
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

export function missingPackages(names: readonly InteropPackage[]): InteropPackage[] {
  return names.filter((n) => !PACKAGE_PROBES[n].every((f) => executable(f)));
}

/**
 * For node:test's `skip` option: a reason when a package is missing outside CI, else undefined.
 * Under CI nothing is skipped: the test runs and the fixture fails with a message naming the package.
 */
export function interopSkip(...names: InteropPackage[]): string | undefined {
  return skipReason(missingPackages(names), process.env);
}

/** The policy itself, pure: missing packages skip only outside CI. */
export function skipReason(missing: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  if (missing.length === 0 || isCi(env)) return undefined;
  return `Debian package(s) not installed: ${missing.join(', ')} (apt-get install them, or run .ci/run)`;
}

/** Throw a clear error when a package is missing; fixtures call it before starting a peer. */
export function assertPackages(...names: InteropPackage[]): void {
  const missing = missingPackages(names);
  if (missing.length > 0) {
    throw new Error(`interop peer missing: Debian package(s) ${missing.join(', ')} not installed`);
  }
}
