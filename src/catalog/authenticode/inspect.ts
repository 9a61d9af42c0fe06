/**
 * inspectCabSignature: what a cabinet's signature says, without any trust decision — the signed
 * digest next to the one computed from the file, and the certificates the signature carries.
 * For diagnostics (`patchline catalog verify --explain`-style output) and tests.
 */
import { signedDigestRanges } from './cab-layout.ts';
import { digestFileRanges } from './cab-digest.ts';
import { parseSignature, readCabSignatureBlob } from './signature-blob.ts';
import { findSignerCert } from './certificate.ts';
import type { DigestName } from './oids.ts';
import { DerFormatError } from './der.ts';
import { SIGNATURE_ERROR, signatureError } from './errors.ts';

export interface CabSignatureInspection {
  readonly signatureOffset: number;
  readonly signatureBytes: number;
  readonly digestAlgorithm: DigestName;
  /** Hex digest recorded in SpcIndirectDataContent. */
  readonly signedDigest: string;
  /** Hex digest of the file's signed ranges, computed now. */
  readonly computedDigest: string;
  readonly signerSubject: string | undefined;
  /** Subject → issuer of every certificate embedded in the signature. */
  readonly certificates: readonly { readonly subject: string; readonly issuer: string }[];
}

/** Returns undefined for a file with no signature record; a malformed blob is CATALOG_SIGNATURE_INVALID. */
export async function inspectCabSignature(
  path: string,
  signal?: AbortSignal,
): Promise<CabSignatureInspection | undefined> {
  const { loc, blob } = await readCabSignatureBlob(path);
  if (loc.kind !== 'signed' || !blob) return undefined;
  let parsed: ReturnType<typeof parseSignature>;
  try {
    parsed = parseSignature(blob);
  } catch (e) {
    if (e instanceof DerFormatError) throw signatureError(SIGNATURE_ERROR.invalid, path, e.message, e);
    throw e;
  }
  const computed = await digestFileRanges(
    path,
    signedDigestRanges(loc.offset),
    parsed.indirect.digestAlgorithm,
    signal,
  );
  const signer = parsed.signedData.signerInfos[0];
  return {
    signatureOffset: loc.offset,
    signatureBytes: loc.size,
    digestAlgorithm: parsed.indirect.digestAlgorithm,
    signedDigest: Buffer.from(parsed.indirect.digest).toString('hex'),
    computedDigest: computed.toString('hex'),
    signerSubject: signer ? findSignerCert(parsed.certs, signer.sid)?.subject : undefined,
    certificates: parsed.certs.map((c) => ({ subject: c.subject, issuer: c.issuer })),
  };
}
