/**
 * MS-CAB on-disk structures (CFHEADER, CFFOLDER, CFFILE, CFDATA) and a pure parser for the
 * header area of one cabinet. The parser follows libmspack's reading rules, which cabextract and
 * therefore our expected results use: the CFFILE table is read right after the CFFOLDER table
 * (coffFiles is ignored), strings are NUL-terminated and at most 256 bytes, and a file whose
 * folder index is out of range makes the whole cabinet invalid.
 */

export const CAB_SIGNATURE = 0x4643534d; // "MSCF" read little-endian
export const CFHEADER_BYTES = 36;
export const CFHEADER_RESERVE_FIELDS_BYTES = 4;
export const CFFOLDER_BYTES = 8;
export const CFFILE_BYTES = 16;
export const CFDATA_BYTES = 8;
/** Longest string (file or cabinet name) including its NUL, as libmspack reads them. */
export const MAX_STRING_BYTES = 256;

/** Every CFDATA block decompresses to at most this many bytes; all but a folder's last to exactly this. */
export const BLOCK_MAX_BYTES = 32768;
/** LZX may expand a block by up to 6144 bytes, so no valid CFDATA payload is larger. */
export const BLOCK_INPUT_MAX_BYTES = BLOCK_MAX_BYTES + 6144;
export const FOLDER_MAX_BLOCKS = 65535;
/** No member can start or end beyond what one folder can hold. */
export const FOLDER_MAX_BYTES = BLOCK_MAX_BYTES * FOLDER_MAX_BLOCKS;

export const FLAG_PREV_CABINET = 0x0001;
export const FLAG_NEXT_CABINET = 0x0002;
export const FLAG_RESERVE_PRESENT = 0x0004;

export const FOLDER_INDEX_CONTINUED_FROM_PREV = 0xfffd;
export const FOLDER_INDEX_CONTINUED_TO_NEXT = 0xfffe;
export const FOLDER_INDEX_CONTINUED_PREV_AND_NEXT = 0xffff;

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_EXECUTE = 0x40;
export const ATTR_UTF8_NAME = 0x80;

export const COMPRESSION_MASK = 0x000f;
export const COMPRESSION = { none: 0, mszip: 1, quantum: 2, lzx: 3 } as const;
export type CompressionName = keyof typeof COMPRESSION;

/** First four bytes of an Authenticode header reserve (cbCFHeader >= 20), as signtool writes it. */
export const SIGNATURE_RESERVE_MAGIC = 0x00100000;
export const SIGNATURE_RESERVE_BYTES = 20;

export interface CabinetHeader {
  /** Where this cabinet starts in its file (non-zero for cabinets embedded in other data). */
  readonly offset: number;
  /** cbCabinet: the cabinet's own length; a signed cabinet's file is longer. */
  readonly cabinetSize: number;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly folderCount: number;
  readonly fileCount: number;
  readonly flags: number;
  readonly setId: number;
  readonly setIndex: number;
  readonly reserve: { readonly header: number; readonly folder: number; readonly data: number };
  /** The header reserve bytes (abReserve), empty when there are none. */
  readonly headerReserve: Uint8Array;
  /** Authenticode signature location when the header reserve has the signtool layout. */
  readonly signature?: { readonly offset: number; readonly size: number };
  readonly prevCabinet?: { readonly name: string; readonly disk: string };
  readonly nextCabinet?: { readonly name: string; readonly disk: string };
}

export interface RawFolder {
  /** Absolute file offset of the first CFDATA block. */
  readonly dataOffset: number;
  readonly blockCount: number;
  /** typeCompress as stored (low nibble = method, bits 8–12 = window bits for LZX/Quantum). */
  readonly compressionType: number;
}

export interface RawFile {
  readonly size: number;
  readonly offsetInFolder: number;
  readonly folderIndex: number;
  readonly date: number;
  readonly time: number;
  readonly attributes: number;
  readonly rawName: Uint8Array;
}

export interface ParsedCabinet {
  readonly header: CabinetHeader;
  readonly folders: readonly RawFolder[];
  readonly files: readonly RawFile[];
}

/** Why a header could not be parsed: the data ended (`truncated`) or is wrong (`format`/`signature`). */
export type ParseFailure = 'truncated' | 'format' | 'signature';

export class HeaderParseError extends Error {
  constructor(
    readonly kind: ParseFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Human name of a folder's compression, e.g. `LZX:21`, `MSZIP`, `unknown(15)`. */
export function describeCompression(compressionType: number): string {
  const method = compressionType & COMPRESSION_MASK;
  const bits = (compressionType >>> 8) & 0x1f;
  switch (method) {
    case COMPRESSION.none:
      return 'none';
    case COMPRESSION.mszip:
      return 'MSZIP';
    case COMPRESSION.quantum:
      return `Quantum:${bits}`;
    case COMPRESSION.lzx:
      return `LZX:${bits}`;
    default:
      return `unknown(${method})`;
  }
}

/**
 * Parse the header area of the cabinet that starts at `buf[0]` (file offset `base`).
 * `buf` holds the file from `base` on; if it is shorter than the rest of the file and the parser
 * runs out, a `truncated` failure tells the caller to retry with more bytes.
 */
export function parseCabinet(buf: Uint8Array, base: number): ParsedCabinet {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const need = (n: number, what: string): void => {
    if (pos + n > buf.length) throw new HeaderParseError('truncated', `cabinet header ends inside ${what}`);
  };
  const readString = (permitEmpty: boolean, what: string): Uint8Array => {
    const available = Math.min(MAX_STRING_BYTES, buf.length - pos);
    if (available <= 0) throw new HeaderParseError('truncated', `cabinet header ends before ${what}`);
    const end = buf.subarray(pos, pos + available).indexOf(0);
    if (end < 0) {
      // A string cut by the end of the data may just need more bytes; a full 256 without NUL is bad.
      if (available < MAX_STRING_BYTES) throw new HeaderParseError('truncated', `cabinet header ends inside ${what}`);
      throw new HeaderParseError('format', `${what} is longer than ${MAX_STRING_BYTES - 1} bytes`);
    }
    if (end === 0 && !permitEmpty) throw new HeaderParseError('format', `${what} is empty`);
    const bytes = buf.slice(pos, pos + end);
    pos += end + 1;
    return bytes;
  };
  const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

  need(CFHEADER_BYTES, 'CFHEADER');
  if (view.getUint32(0, true) !== CAB_SIGNATURE) throw new HeaderParseError('signature', 'no MSCF signature');
  const cabinetSize = view.getUint32(8, true);
  const versionMinor = buf[24]!;
  const versionMajor = buf[25]!;
  const folderCount = view.getUint16(26, true);
  const fileCount = view.getUint16(28, true);
  const flags = view.getUint16(30, true);
  const setId = view.getUint16(32, true);
  const setIndex = view.getUint16(34, true);
  if (folderCount === 0) throw new HeaderParseError('format', 'no folders in cabinet');
  if (fileCount === 0) throw new HeaderParseError('format', 'no files in cabinet');
  pos = CFHEADER_BYTES;

  let headerReserveSize = 0;
  let folderReserveSize = 0;
  let dataReserveSize = 0;
  let headerReserve: Uint8Array = new Uint8Array(0);
  if (flags & FLAG_RESERVE_PRESENT) {
    need(CFHEADER_RESERVE_FIELDS_BYTES, 'the reserve sizes');
    headerReserveSize = view.getUint16(pos, true);
    folderReserveSize = buf[pos + 2]!;
    dataReserveSize = buf[pos + 3]!;
    pos += CFHEADER_RESERVE_FIELDS_BYTES;
    need(headerReserveSize, 'the header reserve');
    headerReserve = buf.slice(pos, pos + headerReserveSize);
    pos += headerReserveSize;
  }

  let prevCabinet: CabinetHeader['prevCabinet'];
  let nextCabinet: CabinetHeader['nextCabinet'];
  if (flags & FLAG_PREV_CABINET) {
    const name = readString(false, 'the previous cabinet name');
    prevCabinet = { name: text(name), disk: text(readString(true, 'the previous disk name')) };
  }
  if (flags & FLAG_NEXT_CABINET) {
    const name = readString(false, 'the next cabinet name');
    nextCabinet = { name: text(name), disk: text(readString(true, 'the next disk name')) };
  }

  const folders: RawFolder[] = [];
  for (let i = 0; i < folderCount; i++) {
    need(CFFOLDER_BYTES + folderReserveSize, `CFFOLDER ${i}`);
    folders.push({
      dataOffset: base + view.getUint32(pos, true),
      blockCount: view.getUint16(pos + 4, true),
      compressionType: view.getUint16(pos + 6, true),
    });
    pos += CFFOLDER_BYTES + folderReserveSize;
  }

  const files: RawFile[] = [];
  for (let i = 0; i < fileCount; i++) {
    need(CFFILE_BYTES, `CFFILE ${i}`);
    const folderIndex = view.getUint16(pos + 8, true);
    const entry = {
      size: view.getUint32(pos, true),
      offsetInFolder: view.getUint32(pos + 4, true),
      folderIndex,
      date: view.getUint16(pos + 10, true),
      time: view.getUint16(pos + 12, true),
      attributes: view.getUint16(pos + 14, true),
    };
    pos += CFFILE_BYTES;
    const rawName = readString(false, `the name of file ${i}`);
    if (folderIndex < FOLDER_INDEX_CONTINUED_FROM_PREV && folderIndex >= folderCount) {
      throw new HeaderParseError('format', `file ${i} names folder ${folderIndex} but the cabinet has ${folderCount}`);
    }
    files.push({ ...entry, rawName });
  }

  const signature = readSignatureReserve(headerReserve);
  const header: CabinetHeader = {
    offset: base,
    cabinetSize,
    versionMajor,
    versionMinor,
    folderCount,
    fileCount,
    flags,
    setId,
    setIndex,
    reserve: { header: headerReserveSize, folder: folderReserveSize, data: dataReserveSize },
    headerReserve,
    ...(signature ? { signature } : {}),
    ...(prevCabinet ? { prevCabinet } : {}),
    ...(nextCabinet ? { nextCabinet } : {}),
  };
  return { header, folders, files };
}

/** Signature offset/size from an Authenticode-style header reserve, if it has that layout. */
export function readSignatureReserve(reserve: Uint8Array): { offset: number; size: number } | undefined {
  if (reserve.length < SIGNATURE_RESERVE_BYTES) return undefined;
  const view = new DataView(reserve.buffer, reserve.byteOffset, reserve.byteLength);
  if (view.getUint32(0, true) !== SIGNATURE_RESERVE_MAGIC) return undefined;
  return { offset: view.getUint32(4, true), size: view.getUint32(8, true) };
}

/** MS-DOS date/time of a CFFILE as a Date (fields taken as UTC; cabinets store no time zone). */
export function dosDateTime(date: number, time: number): Date {
  const year = (date >>> 9) + 1980;
  const month = (date >>> 5) & 0x0f;
  const day = date & 0x1f;
  return new Date(
    Date.UTC(year, Math.max(month, 1) - 1, Math.max(day, 1), time >>> 11, (time >>> 5) & 0x3f, (time << 1) & 0x3e),
  );
}

/** Encode a Date (UTC fields) as MS-DOS date and time words. */
export function toDosDateTime(when: Date): { date: number; time: number } {
  const year = Math.min(Math.max(when.getUTCFullYear(), 1980), 2107);
  return {
    date: ((year - 1980) << 9) | ((when.getUTCMonth() + 1) << 5) | when.getUTCDate(),
    time: (when.getUTCHours() << 11) | (when.getUTCMinutes() << 5) | (when.getUTCSeconds() >>> 1),
  };
}
