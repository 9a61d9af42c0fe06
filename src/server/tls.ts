/**
 * The server's TLS identity: the operator's certificate (--tls-cert/--tls-key), or a self-signed
 * one created on first start in `<data>/tls/` and kept across restarts. Either way its SHA-256
 * fingerprint travels inside enrollment tokens so agents pin it (no "trust any certificate"
 * switch). Node has no X.509 generator; the catalog's certificate builder (pkijs) issues it.
 */
import { generateKeyPair, X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueCertificate } from '../catalog/authenticode/certificate-builder.ts';
import { EXIT, PatchlineError } from '../domain/errors.ts';

export const TLS_DIR = 'tls';
export const SELF_SIGNED_CERT_FILE = 'server-cert.pem';
export const SELF_SIGNED_KEY_FILE = 'server-key.pem';
/** Agents pin the fingerprint, so renewing means re-enrolling: make it last (5 years). */
export const SELF_SIGNED_VALIDITY_DAYS = 5 * 365;
const RSA_BITS = 2048;
/** Backdated so a host whose clock is a little behind still accepts it. */
const NOT_BEFORE_SKEW_MS = 60 * 60 * 1000;

export interface TlsIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  /** Lower-case hex SHA-256 of the certificate's DER. */
  readonly fingerprint: string;
  /** Where it came from, for the start-up line. */
  readonly source: 'files' | 'self-signed' | 'self-signed-new';
}

/** SHA-256 of a PEM certificate's DER, lower-case hex without colons. */
export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsIdentity> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  } catch (cause) {
    throw new PatchlineError(
      'TLS_FILES_UNREADABLE',
      `Cannot read --tls-cert ${certFile} or --tls-key ${keyFile}: ${(cause as Error).message}`,
      { cause, exitCode: EXIT.USAGE },
    );
  }
  try {
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) throw new Error('the key does not belong to the certificate');
  } catch (cause) {
    throw new PatchlineError(
      'TLS_FILES_INVALID',
      `--tls-cert ${certFile} / --tls-key ${keyFile}: ${(cause as Error).message}. Give a PEM certificate and its PEM private key.`,
      { cause, exitCode: EXIT.USAGE },
    );
  }
  return { certPem, keyPem, fingerprint: certificateFingerprint(certPem), source: 'files' };
}

/** The self-signed identity in `<dataDir>/tls/`, created (atomically) when absent. */
export async function ensureSelfSigned(dataDir: string, now: Date): Promise<TlsIdentity> {
  const dir = join(dataDir, TLS_DIR);
  const certFile = join(dir, SELF_SIGNED_CERT_FILE);
  const keyFile = join(dir, SELF_SIGNED_KEY_FILE);
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { certPem, keyPem, fingerprint: certificateFingerprint(certPem), source: 'self-signed' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new PatchlineError(
        'TLS_FILES_UNREADABLE',
        `Cannot read the server certificate in ${dir}: ${(error as Error).message}`,
        { cause: error },
      );
  }
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: RSA_BITS });
  const subject = `Patchline server ${hostname()}`;
  const certPem = issueCertificate({
    subject,
    issuer: subject,
    publicKey: createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })),
    issuerKey: privateKey,
    issuerPublicKey: publicKey,
    notBefore: new Date(now.getTime() - NOT_BEFORE_SKEW_MS),
    notAfter: new Date(now.getTime() + SELF_SIGNED_VALIDITY_DAYS * 86_400_000),
    ca: false,
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Key first, then the certificate by rename: a crash leaves no certificate without its key.
  await writeFile(keyFile, keyPem, { mode: 0o600 });
  await writeFile(`${certFile}.tmp`, certPem, { mode: 0o644 });
  await rename(`${certFile}.tmp`, certFile);
  return { certPem, keyPem, fingerprint: certificateFingerprint(certPem), source: 'self-signed-new' };
}
