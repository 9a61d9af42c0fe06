/**
 * signCab: Authenticode-sign a cabinet, as the lab does for the catalogs it generates. Two
 * streaming passes over the input (digest, then copy), so catalog size does not matter. A cabinet
 * without the 20-byte signature reserve gets one (all offsets shift by 24 bytes); an already
 * signed one is re-signed (its old signature is dropped). The output is written to a temporary
 * file beside `outPath` and renamed into place, so readers never see half a file.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { hashFileRange } from './cab-digest.ts';
import {
  CAB_FIXED_HEADER_BYTES,
  SIGNATURE_ALIGNMENT_BYTES,
  headBytesNeeded,
  planSigning,
  recordSignature,
  signedDigestRanges,
} from './cab-layout.ts';
import { buildAuthenticodeSignature } from './signature-builder.ts';
import { certsFromPem, type CertInfo } from './certificate.ts';
import { OID, type DigestName } from './oids.ts';
import { SIGNATURE_ERROR, signatureError } from './errors.ts';

/** Header + set names + folder table larger than this is not a cabinet we sign (65535 folders fit). */
export const MAX_CAB_HEAD_BYTES = 32 * 1024 * 1024;

export interface SignCabOptions {
  /** PEM of the signing certificate (must carry the code-signing EKU). */
  readonly certPem: string;
  /** PEM of its private key (PKCS#8 or traditional; RSA or EC). */
  readonly keyPem: string;
  /** PEM texts of the intermediates (and optionally the root) to embed. */
  readonly chainPems?: readonly string[];
  /** Default sha256. */
  readonly digestAlgorithm?: DigestName;
  /** The signing-time attribute. Default: now. */
  readonly signingTime?: Date;
  readonly signal?: AbortSignal;
}

export interface SignCabResult {
  readonly signatureOffset: number;
  /** Including the zero padding. */
  readonly signatureBytes: number;
  /** Hex digest of the signed bytes. */
  readonly digest: string;
}

async function readHead(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const first = Buffer.alloc(Math.min(size, CAB_FIXED_HEADER_BYTES));
    await fh.read(first, 0, first.length, 0);
    const need = Math.min(headBytesNeeded(first), size);
    if (need > MAX_CAB_HEAD_BYTES) throw new RangeError(`the cabinet header claims ${need} bytes`);
    const head = Buffer.alloc(need);
    await fh.read(head, 0, need, 0);
    return head;
  } finally {
    await fh.close();
  }
}

function loadSigner(options: SignCabOptions, file: string): { signer: CertInfo; chain: CertInfo[]; key: KeyObject } {
  let signer: CertInfo | undefined;
  let chain: CertInfo[];
  let key: KeyObject;
  try {
    signer = certsFromPem(options.certPem)[0];
    chain = (options.chainPems ?? []).flatMap((pem) => certsFromPem(pem));
    key = createPrivateKey(options.keyPem);
  } catch (e) {
    throw signatureError(
      SIGNATURE_ERROR.signFailed,
      file,
      `the certificate or key cannot be read (${(e as Error).message})`,
      e,
    );
  }
  if (!signer) throw signatureError(SIGNATURE_ERROR.signFailed, file, 'certPem holds no certificate');
  if (!signer.x509.checkPrivateKey(key)) {
    throw signatureError(SIGNATURE_ERROR.signFailed, file, `the key does not belong to "${signer.subject}"`);
  }
  if (!signer.extendedKeyUsage?.includes(OID.ekuCodeSigning)) {
    throw signatureError(
      SIGNATURE_ERROR.signFailed,
      file,
      `"${signer.subject}" is not a code-signing certificate (no codeSigning EKU)`,
    );
  }
  return { signer, chain, key };
}

/**
 * Signs `inPath` into `outPath` (they may be the same file).
 *
 * @example
 *   const lab = await createLabRoot({ dir });
 *   await signCab('catalog.cab', 'wsusscn2.cab', { certPem: lab.certPem, keyPem: lab.keyPem, chainPems: [] });
 * @throws PatchlineError CAB_SIGN_FAILED
 */
export async function signCab(inPath: string, outPath: string, options: SignCabOptions): Promise<SignCabResult> {
  const { signer, chain, key } = loadSigner(options, inPath);
  const digestAlgorithm = options.digestAlgorithm ?? 'sha256';
  const size = (await stat(inPath)).size;
  const planned = planSigning(await readHead(inPath, size), size);
  if (!planned.ok) throw signatureError(SIGNATURE_ERROR.signFailed, inPath, planned.reason);
  const { plan } = planned;

  // Pass 1: the digest over the new head's signed ranges, then the unchanged body.
  const hash = createHash(digestAlgorithm);
  for (const r of signedDigestRanges(plan.head.length)) hash.update(plan.head.subarray(r.start, r.end));
  await hashFileRange(hash, inPath, { start: plan.bodyStart, end: plan.bodyEnd }, options.signal);
  const digest = hash.digest();

  let der: Buffer;
  try {
    der = buildAuthenticodeSignature({
      digest,
      digestAlgorithm,
      signer,
      chain,
      privateKey: key,
      signingTime: options.signingTime ?? new Date(),
    });
  } catch (e) {
    throw signatureError(SIGNATURE_ERROR.signFailed, inPath, (e as Error).message, e);
  }
  const padding = (SIGNATURE_ALIGNMENT_BYTES - (der.length % SIGNATURE_ALIGNMENT_BYTES)) % SIGNATURE_ALIGNMENT_BYTES;
  const blob = Buffer.concat([der, Buffer.alloc(padding)]);
  recordSignature(plan.head, plan.signatureOffset, blob.length);

  // Pass 2: head, body, signature into a temporary file, then rename.
  const tmp = `${outPath}.${process.pid}.${Date.now()}.signing`;
  try {
    const body =
      plan.bodyEnd > plan.bodyStart
        ? createReadStream(inPath, { start: plan.bodyStart, end: plan.bodyEnd - 1 })
        : Readable.from([]);
    async function* image(): AsyncGenerator<Buffer> {
      yield plan.head;
      for await (const chunk of body) yield chunk as Buffer;
      yield blob;
    }
    const out = createWriteStream(tmp);
    await (options.signal ? pipeline(image, out, { signal: options.signal }) : pipeline(image, out));
    await rename(tmp, outPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { signatureOffset: plan.signatureOffset, signatureBytes: blob.length, digest: digest.toString('hex') };
}
