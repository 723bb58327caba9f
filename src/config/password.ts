/**
 * @module config/password
 * Passwords in the config: hashing (`scrypt:N:r:p:salt:hash`, node:crypto's scrypt, nothing to install),
 * constant-time verification of plain or hashed entries, and reading `env:VAR` / `file:path` references.
 */
import { randomBytes, scrypt, timingSafeEqual, createHash, type ScryptOptions } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((ok, fail) =>
    scrypt(password, salt, keylen, opts, (err, key) => (err ? fail(err) : ok(key))),
  );
}

/** Hash for `[auth.users]`; `N` is the scrypt cost (a power of two). */
export async function hashPassword(
  password: string,
  opts: { N?: number; r?: number; p?: number } = {},
): Promise<string> {
  const N = opts.N ?? 16384;
  const r = opts.r ?? 8;
  const p = opts.p ?? 1;
  if (!Number.isInteger(Math.log2(N)) || N < 2) {
    throw new RangeError(`Cannot hash the password: 'N' must be a power of two: current value is ${N}`);
  }
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEYLEN, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return `scrypt:${N}:${r}:${p}:${salt.toString('base64')}:${key.toString('base64')}`;
}

/** True when `given` matches `stored` (a plain password or a `scrypt:` hash). Constant-time either way. */
export async function verifyPassword(stored: string, given: string): Promise<boolean> {
  if (!stored.startsWith('scrypt:')) {
    const a = createHash('sha256').update(stored).digest();
    const b = createHash('sha256').update(given).digest();
    return timingSafeEqual(a, b);
  }
  const [, n, r, p, salt, hash] = stored.split(':');
  const want = Buffer.from(hash ?? '', 'base64');
  const N = Number(n);
  const R = Number(r);
  if (want.length === 0 || !Number.isInteger(N) || !Number.isInteger(R)) return false;
  const got = await scryptAsync(given, Buffer.from(salt ?? '', 'base64'), want.length, {
    N,
    r: R,
    p: Number(p),
    maxmem: 256 * N * R + 1024 * 1024,
  });
  return timingSafeEqual(got, want);
}

export interface SecretSources {
  baseDir: string;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * `env:VAR` → the variable's value; `file:path` → the file's text without its trailing newline (path relative
 * to the config's folder); anything else as is. Returns `{ error }` with a sentence when it cannot.
 */
export function resolveSecret(value: string, src: SecretSources): { value: string } | { error: string } {
  if (value.startsWith('env:')) {
    const name = value.slice(4);
    const v = src.env[name];
    if (v === undefined || v === '')
      return { error: `environment variable ${name} is not set (from "${value}")` };
    return { value: v };
  }
  if (value.startsWith('file:')) {
    const p = value.slice(5);
    const full = isAbsolute(p) ? p : resolve(src.baseDir, p);
    try {
      const text = readFileSync(full, 'utf8').replace(/\r?\n$/, '');
      if (text === '') return { error: `file ${full} is empty (from "${value}")` };
      return { value: text };
    } catch (err) {
      return {
        error: `cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (from "${value}")`,
      };
    }
  }
  return { value };
}
