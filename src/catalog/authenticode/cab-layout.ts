/**
 * Where a cabinet keeps its Authenticode signature, and which bytes the signature covers.
 *
 * Pure functions over header bytes. The layout (as osslsigncode implements it and Windows
 * accepts): the header has flag cfhdrRESERVE_PRESENT and a 20-byte header reserve at offset 40:
 *   40: 00 00 10 00 (magic)   44: u32 offset of the PKCS#7 blob   48: u32 its size (padded to 8)
 *   52..59: zero
 * The blob sits after the cabinet data (offset == cbCabinet). The signed digest covers bytes
 * [0,4) + [8,34) + [56, signature offset): everything except reserved1, iCabinet, the reserve
 * sizes, the signature location fields and the signature itself.
 */

export const CAB_MAGIC = 'MSCF';
/** CFHEADER up to and including iCabinet. */
export const CAB_FIXED_HEADER_BYTES = 36;
/** cbCFHeader (u16), cbCFFolder (u8), cbCFData (u8). */
export const CAB_RESERVE_SIZES_BYTES = 4;
export const AUTHENTICODE_RESERVE_BYTES = 20;
/** Header bytes needed to locate a signature: fixed header + sizes + the 20-byte reserve. */
export const SIGNED_HEADER_BYTES = CAB_FIXED_HEADER_BYTES + CAB_RESERVE_SIZES_BYTES + AUTHENTICODE_RESERVE_BYTES;
/** What adding the reserve to a cabinet without one shifts every offset by. */
export const RESERVE_INSERT_BYTES = CAB_RESERVE_SIZES_BYTES + AUTHENTICODE_RESERVE_BYTES;
export const RESERVE_MAGIC = 0x00100000;
export const CFFOLDER_BYTES = 8;
/** The PKCS#7 blob is zero-padded to this alignment (osslsigncode, signtool). */
export const SIGNATURE_ALIGNMENT_BYTES = 8;

export const CAB_FLAGS = { prevCabinet: 0x0001, nextCabinet: 0x0002, reservePresent: 0x0004 } as const;

const OFF = {
  reserved1: 4,
  cbCabinet: 8,
  coffFiles: 16,
  cFolders: 26,
  flags: 30,
  cbCFHeader: 36,
  cbCFFolder: 38,
  cbCFData: 39,
  reserveMagic: 40,
  sigOffset: 44,
  sigSize: 48,
  reserveTail: 52,
} as const;

export type SignatureLocation =
  | { readonly kind: 'not-cabinet'; readonly reason: string }
  | { readonly kind: 'unsigned'; readonly reason: string }
  /** The header points at a signature, but the file does not hold it as described. */
  | { readonly kind: 'truncated'; readonly reason: string }
  | { readonly kind: 'trailing-data'; readonly reason: string }
  /** Header fields the digest does not cover were changed to values no signer writes. */
  | { readonly kind: 'unsigned-fields-altered'; readonly reason: string }
  | { readonly kind: 'signed'; readonly offset: number; readonly size: number };

/**
 * Reads the signature location from the first bytes of a file (at least SIGNED_HEADER_BYTES
 * of them when the file is that long).
 *
 * @example locateSignature(head, stat.size) // { kind: 'signed', offset: 139, size: 2040 }
 */
export function locateSignature(head: Uint8Array, fileSize: number): SignatureLocation {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < CAB_FIXED_HEADER_BYTES || b.toString('latin1', 0, 4) !== CAB_MAGIC) {
    return { kind: 'not-cabinet', reason: 'the file does not start with a cabinet header (MSCF)' };
  }
  const flags = b.readUInt16LE(OFF.flags);
  if ((flags & CAB_FLAGS.reservePresent) === 0) {
    return { kind: 'unsigned', reason: 'the cabinet header has no reserve area, where a signature would be recorded' };
  }
  if (b.length < SIGNED_HEADER_BYTES)
    return { kind: 'unsigned', reason: 'the cabinet header is too short to hold a signature' };
  const cbCFHeader = b.readUInt16LE(OFF.cbCFHeader);
  if (cbCFHeader !== AUTHENTICODE_RESERVE_BYTES || b.readUInt32LE(OFF.reserveMagic) !== RESERVE_MAGIC) {
    return {
      kind: 'unsigned',
      reason: `the header reserve (${cbCFHeader} bytes) is not an Authenticode signature record`,
    };
  }
  const offset = b.readUInt32LE(OFF.sigOffset);
  const size = b.readUInt32LE(OFF.sigSize);
  if (offset === 0 || size === 0) {
    return { kind: 'unsigned', reason: 'the signature record in the header is empty' };
  }
  if (b[OFF.cbCFFolder] !== 0 || b[OFF.cbCFData] !== 0 || b.readUInt32LE(OFF.reserveTail) !== 0) {
    return {
      kind: 'unsigned-fields-altered',
      reason: 'header fields outside the signed digest (folder/data reserve sizes) were changed',
    };
  }
  if (offset < SIGNED_HEADER_BYTES || offset + size > fileSize) {
    return {
      kind: 'truncated',
      reason: `the header places a ${size}-byte signature at offset ${offset}, but the file has ${fileSize} bytes`,
    };
  }
  if (offset + size < fileSize) {
    return {
      kind: 'trailing-data',
      reason: `${fileSize - offset - size} bytes follow the signature, which nothing signed`,
    };
  }
  return { kind: 'signed', offset, size };
}

export interface ByteRange {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

/** The byte ranges of a signed cabinet that its Authenticode digest covers, in order. */
export function signedDigestRanges(signatureOffset: number): readonly ByteRange[] {
  return [
    { start: 0, end: OFF.reserved1 },
    { start: OFF.cbCabinet, end: 34 },
    { start: 56, end: signatureOffset },
  ];
}

/**
 * How to turn an input cabinet into the to-be-signed image: a new head (header, optional set
 * names, folder table) followed by input bytes [bodyStart, bodyEnd). The signature goes at
 * `signatureOffset` = head.length + (bodyEnd - bodyStart) = the new cbCabinet.
 */
export interface SigningPlan {
  readonly head: Buffer;
  readonly bodyStart: number;
  readonly bodyEnd: number;
  readonly signatureOffset: number;
}

export type SigningPlanResult =
  { readonly ok: true; readonly plan: SigningPlan } | { readonly ok: false; readonly reason: string };

/** How many leading bytes planSigning needs: up to coffFiles (header, names, folder table). */
export function headBytesNeeded(head: Uint8Array): number {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return b.length >= 20 ? b.readUInt32LE(OFF.coffFiles) : CAB_FIXED_HEADER_BYTES;
}

function skipCString(b: Buffer, from: number): number {
  const nul = b.indexOf(0, from);
  if (nul < 0) throw new RangeError('unterminated cabinet set name');
  return nul + 1;
}

/**
 * Plans the header rewrite for signing. `head` holds the input's first headBytesNeeded() bytes.
 * - no reserve: insert the 24-byte reserve and shift cbCabinet, coffFiles and every folder's
 *   coffCabStart by 24;
 * - a reserve of another size (with no folder/data reserve): replace it by the 20-byte one;
 * - already in the Authenticode layout (signed or a placeholder): drop the old signature, keep the rest.
 */
export function planSigning(head: Uint8Array, fileSize: number): SigningPlanResult {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < CAB_FIXED_HEADER_BYTES || b.toString('latin1', 0, 4) !== CAB_MAGIC) {
    return { ok: false, reason: 'the input does not start with a cabinet header (MSCF)' };
  }
  const flags = b.readUInt16LE(OFF.flags);
  const cbCabinet = b.readUInt32LE(OFF.cbCabinet);
  const coffFiles = b.readUInt32LE(OFF.coffFiles);
  const cFolders = b.readUInt16LE(OFF.cFolders);
  if (b.length < coffFiles) return { ok: false, reason: 'the header is shorter than coffFiles says' };

  let oldReserveEnd = CAB_FIXED_HEADER_BYTES; // where the set names / folder table start in the input
  let bodyEnd = cbCabinet;
  if (flags & CAB_FLAGS.reservePresent) {
    const cbCFHeader = b.readUInt16LE(OFF.cbCFHeader);
    if (b[OFF.cbCFFolder] !== 0 || b[OFF.cbCFData] !== 0) {
      return {
        ok: false,
        reason: 'the cabinet reserves bytes per folder or per data block; the signer supports only a header reserve',
      };
    }
    oldReserveEnd = CAB_FIXED_HEADER_BYTES + CAB_RESERVE_SIZES_BYTES + cbCFHeader;
    if (cbCFHeader === AUTHENTICODE_RESERVE_BYTES && b.readUInt32LE(OFF.reserveMagic) === RESERVE_MAGIC) {
      const oldSig = b.readUInt32LE(OFF.sigOffset);
      if (oldSig !== 0) bodyEnd = oldSig;
    }
  }
  if (bodyEnd > fileSize || bodyEnd < coffFiles) {
    return { ok: false, reason: `cbCabinet (${bodyEnd}) does not fit the file size (${fileSize})` };
  }

  let namesEnd: number;
  try {
    namesEnd = oldReserveEnd;
    if (flags & CAB_FLAGS.prevCabinet) namesEnd = skipCString(b, skipCString(b, namesEnd));
    if (flags & CAB_FLAGS.nextCabinet) namesEnd = skipCString(b, skipCString(b, namesEnd));
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  const folderTableEnd = namesEnd + cFolders * CFFOLDER_BYTES;
  if (folderTableEnd > coffFiles) return { ok: false, reason: 'the folder table overlaps the file table' };

  const newReserveEnd = SIGNED_HEADER_BYTES;
  const shift = newReserveEnd - oldReserveEnd;
  const out = Buffer.alloc(folderTableEnd + shift);
  b.copy(out, 0, 0, CAB_FIXED_HEADER_BYTES);
  out.writeUInt32LE(0, OFF.reserved1);
  out.writeUInt32LE(bodyEnd + shift, OFF.cbCabinet);
  out.writeUInt32LE(coffFiles + shift, OFF.coffFiles);
  out.writeUInt16LE(flags | CAB_FLAGS.reservePresent, OFF.flags);
  out.writeUInt16LE(AUTHENTICODE_RESERVE_BYTES, OFF.cbCFHeader);
  out[OFF.cbCFFolder] = 0;
  out[OFF.cbCFData] = 0;
  out.writeUInt32LE(RESERVE_MAGIC, OFF.reserveMagic);
  // sigOffset/sigSize (44..51) are filled in once the signature exists; 52..59 stay zero.
  b.copy(out, newReserveEnd, oldReserveEnd, namesEnd);
  for (let i = 0; i < cFolders; i++) {
    const from = namesEnd + i * CFFOLDER_BYTES;
    const to = from + shift;
    out.writeUInt32LE(b.readUInt32LE(from) + shift, to); // coffCabStart
    b.copy(out, to + 4, from + 4, from + CFFOLDER_BYTES); // cCFData, typeCompress
  }
  const bodyStart = folderTableEnd;
  return { ok: true, plan: { head: out, bodyStart, bodyEnd, signatureOffset: out.length + (bodyEnd - bodyStart) } };
}

/** Writes the signature location into a planned head (bytes the digest does not cover). */
export function recordSignature(head: Buffer, signatureOffset: number, paddedSize: number): void {
  head.writeUInt32LE(signatureOffset, OFF.sigOffset);
  head.writeUInt32LE(paddedSize, OFF.sigSize);
}
