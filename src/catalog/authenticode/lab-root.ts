/**
 * createLabRoot: a throwaway certificate authority for the lab — a self-signed root and a
 * code-signing leaf it issued — so lab catalogs can be signed and verified with `--trust
 * lab-root.pem`, with no openssl binary (keys from node:crypto, certificates from
 * certificate-builder.ts). The root's private key is never written anywhere:
 * nothing else can be issued under it, so trusting it trusts exactly this lab signer.
 */
import { generateKeyPair } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OID } from './oids.ts';
import { issueCertificate } from './certificate-builder.ts';

export const LAB_ROOT_FILE = 'lab-root.pem';
export const LAB_SIGNING_CERT_FILE = 'lab-signing-cert.pem';
export const LAB_SIGNING_KEY_FILE = 'lab-signing-key.pem';
export const LAB_RSA_KEY_BITS = 2048;
export const LAB_ROOT_VALIDITY_DAYS = 3650;
export const LAB_LEAF_VALIDITY_DAYS = 825;
/** Certificates start this far in the past so a host with a slightly slow clock accepts them. */
export const LAB_CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface LabRoot {
  readonly rootPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CreateLabRootOptions {
  /** Where lab-root.pem, lab-signing-cert.pem and lab-signing-key.pem live. */
  readonly dir: string;
  /** Default: now. */
  readonly now?: Date;
}

const generateKeyPairAsync = promisify(generateKeyPair);

async function readIfComplete(dir: string): Promise<LabRoot | undefined> {
  try {
    const [rootPem, certPem, keyPem] = await Promise.all(
      [LAB_ROOT_FILE, LAB_SIGNING_CERT_FILE, LAB_SIGNING_KEY_FILE].map((f) => readFile(join(dir, f), 'utf8')),
    );
    return { rootPem: rootPem as string, certPem: certPem as string, keyPem: keyPem as string };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Returns the lab CA in `dir`, creating it when any of its three files is missing (so a lab
 * keeps one root across runs and `--trust DIR/lab-root.pem` stays valid).
 *
 * @example
 *   const lab = await createLabRoot({ dir: '/tmp/lab' });
 *   await signCab(cab, cab, { certPem: lab.certPem, keyPem: lab.keyPem });
 *   await verifyCabSignature(cab, { roots: [lab.rootPem] });
 */
export async function createLabRoot(options: CreateLabRootOptions): Promise<LabRoot> {
  const existing = await readIfComplete(options.dir);
  if (existing) return existing;

  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - LAB_CLOCK_SKEW_MS);
  const rsa = { modulusLength: LAB_RSA_KEY_BITS, publicExponent: 0x10001 };
  const [root, leaf] = await Promise.all([generateKeyPairAsync('rsa', rsa), generateKeyPairAsync('rsa', rsa)]);
  const rootName = 'Patchline Lab Root CA';
  const rootPem = issueCertificate({
    subject: rootName,
    issuer: rootName,
    publicKey: root.publicKey,
    issuerKey: root.privateKey,
    issuerPublicKey: root.publicKey,
    notBefore,
    notAfter: new Date(now.getTime() + LAB_ROOT_VALIDITY_DAYS * DAY_MS),
    ca: true,
  });
  const certPem = issueCertificate({
    subject: 'Patchline Lab Catalog Signing',
    issuer: rootName,
    publicKey: leaf.publicKey,
    issuerKey: root.privateKey,
    issuerPublicKey: root.publicKey,
    notBefore,
    notAfter: new Date(now.getTime() + LAB_LEAF_VALIDITY_DAYS * DAY_MS),
    ca: false,
    extendedKeyUsage: [OID.ekuCodeSigning],
  });
  const keyPem = leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

  await mkdir(options.dir, { recursive: true });
  await writeFile(join(options.dir, LAB_ROOT_FILE), rootPem);
  await writeFile(join(options.dir, LAB_SIGNING_CERT_FILE), certPem);
  await writeFile(join(options.dir, LAB_SIGNING_KEY_FILE), keyPem, { mode: 0o600 });
  return { rootPem, certPem, keyPem };
}
