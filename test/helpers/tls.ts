/**
 * @module test/helpers/tls
 * Throwaway self-signed certificates for tests, made by `openssl req -x509` (Debian's openssl).
 * The certificate names `localhost`, `127.0.0.1` and the given host name, so peers that check
 * names against the loopback address are satisfied; nothing trusts it, so clients must not verify.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, runOk } from './proc.js';

export interface SelfSignedCert {
  /** The folder holding the files (a new temp dir unless one was given). */
  dir: string;
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

/**
 * Make an ECDSA P-256 key and a self-signed certificate valid for two days. When `dir` is omitted a
 * temp dir is made; the caller removes it. Files are `cert.pem` and `key.pem`, the key mode 0600.
 */
export async function makeSelfSignedCert(
  opts: { dir?: string; commonName?: string } = {},
): Promise<SelfSignedCert> {
  const dir = opts.dir ?? (await makeTempDir('ferrymail-tls-'));
  const cn = opts.commonName ?? 'localhost';
  if (!/^[A-Za-z0-9.-]+$/.test(cn)) {
    throw new TypeError(
      `Cannot make a certificate: 'commonName' must be a host name: current value is ${cn}`,
    );
  }
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const names = [...new Set([cn, 'localhost'])].map((n) => `DNS:${n}`).concat('IP:127.0.0.1', 'IP:::1');
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=${names.join(',')}`,
    '-keyout',
    keyPath,
    '-out',
    certPath,
  ]);
  const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return { dir, certPath, keyPath, cert, key };
}
