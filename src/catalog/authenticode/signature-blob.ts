/**
 * Reads a cabinet's signature record and blob (never the body) and parses the blob into the
 * Authenticode parts the verifier and the inspector use.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { SIGNATURE_ERROR, signatureError } from './errors.ts';
import { decodeDer, DerFormatError } from './der.ts';
import { locateSignature, SIGNED_HEADER_BYTES, type SignatureLocation } from './cab-layout.ts';
import { parseIndirectData, parseSignedData, type IndirectData, type SignedDataParts } from './signed-data.ts';
import { certFromDer, type CertInfo } from './certificate.ts';
import { OID } from './oids.ts';

/** A signature blob larger than this is not an Authenticode signature (real ones are 2–30 KB). */
export const MAX_SIGNATURE_BYTES = 16 * 1024 * 1024;

export interface CabSignatureBlob {
  readonly size: number;
  readonly loc: SignatureLocation;
  /** Present when loc.kind is 'signed' and the blob is of a plausible size. */
  readonly blob?: Buffer;
}

/** Reads the signature record and blob; a file that cannot be opened is CATALOG_UNREADABLE. */
export async function readCabSignatureBlob(path: string): Promise<CabSignatureBlob> {
  let size: number;
  let fh: FileHandle;
  try {
    size = (await stat(path)).size;
    fh = await open(path, 'r');
  } catch (e) {
    throw signatureError(
      SIGNATURE_ERROR.unreadable,
      path,
      (e as NodeJS.ErrnoException).code ?? (e as Error).message,
      e,
    );
  }
  try {
    const head = Buffer.alloc(Math.min(size, SIGNED_HEADER_BYTES));
    await fh.read(head, 0, head.length, 0);
    const loc = locateSignature(head, size);
    if (loc.kind !== 'signed') return { size, loc };
    if (loc.size > MAX_SIGNATURE_BYTES) return { size, loc };
    const blob = Buffer.alloc(loc.size);
    await fh.read(blob, 0, loc.size, loc.offset);
    return { size, blob, loc };
  } finally {
    await fh.close();
  }
}

export interface ParsedSignature {
  readonly signedData: SignedDataParts;
  readonly indirect: IndirectData;
  readonly certs: readonly CertInfo[];
}

/** Structure of the blob: one DER SignedData over SpcIndirectDataContent, then only zero padding. */
export function parseSignature(blob: Buffer): ParsedSignature {
  const { node, end } = decodeDer(blob, 'Authenticode signature');
  if (blob.subarray(end).some((byte) => byte !== 0)) {
    throw new DerFormatError('non-zero bytes follow the PKCS#7 structure');
  }
  const signedData = parseSignedData(node, 'Authenticode signature');
  if (signedData.contentType !== OID.spcIndirectDataContent) {
    throw new DerFormatError(`the signed content is ${signedData.contentType}, not SpcIndirectDataContent`);
  }
  if (signedData.signerInfos.length !== 1) {
    throw new DerFormatError(`Authenticode needs exactly one signer, found ${signedData.signerInfos.length}`);
  }
  const indirect = parseIndirectData(signedData.content);
  return { signedData, indirect, certs: signedData.certificates.map(certFromDer) };
}
