/**
 * Writing a cabinet: one folder, stored (none) or MSZIP, streamed from files or buffers so that a
 * ~150 MB catalog is written with a few 32 KiB buffers in memory. An optional header reserve
 * (cbCFHeader) leaves room for an Authenticode signature to be added later by another module.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { deflateRawSync } from 'node:zlib';
import { blockChecksum } from './checksum.ts';
import { CabError, unsupported } from './errors.ts';
import {
  ATTR_ARCHIVE,
  ATTR_UTF8_NAME,
  BLOCK_MAX_BYTES,
  CAB_SIGNATURE,
  CFDATA_BYTES,
  CFFILE_BYTES,
  CFFOLDER_BYTES,
  CFHEADER_BYTES,
  CFHEADER_RESERVE_FIELDS_BYTES,
  COMPRESSION,
  FLAG_RESERVE_PRESENT,
  FOLDER_MAX_BLOCKS,
  FOLDER_MAX_BYTES,
  MAX_STRING_BYTES,
  toDosDateTime,
} from './format.ts';

/** Largest header reserve the format allows (cbCFHeader is 16 bits; libmspack warns above 60000). */
export const MAX_HEADER_RESERVE_BYTES = 60000;
const MAX_FILES = 65535;
/** Output is written in batches of about this size. */
const WRITE_BATCH_BYTES = 1024 * 1024;

export interface CabMember {
  /** Name inside the cabinet; `/` is stored as `\` as Windows tools do. */
  readonly name: string;
  /** A file path (streamed) or the bytes themselves. */
  readonly source: string | Uint8Array;
  /** Modification time stored in the cabinet (UTC fields); default: the source file's mtime, or now. */
  readonly date?: Date;
  /** CFFILE attributes; default archive (0x20). The UTF-8 flag is added when the name needs it. */
  readonly attributes?: number;
}

export interface WriteCabOptions {
  readonly compression: 'none' | 'mszip';
  /** Reserve `header` bytes in the CFHEADER (abReserve); `data` fills its start (e.g. signtool's layout). */
  readonly reserve?: { readonly header: number; readonly data?: Uint8Array };
  readonly setId?: number;
  /** Clock for members without a date (tests pass a fixed one). */
  readonly now?: () => Date;
}

export interface WriteCabResult {
  /** Total bytes written (= cbCabinet). */
  readonly size: number;
  readonly blocks: number;
  /** File offset of abReserve, where a signer writes the signature offset and size; undefined without a reserve. */
  readonly headerReserveOffset?: number;
}

interface PreparedMember {
  readonly member: CabMember;
  readonly nameBytes: Buffer;
  readonly size: number;
  readonly date: Date;
  readonly attributes: number;
}

/**
 * Write a cabinet with one folder holding `members` in order.
 * @example await writeCab('out.cab', [{ name: 'index.xml', source: Buffer.from('<INDEX/>') }], { compression: 'mszip' });
 */
export async function writeCab(
  outPath: string,
  members: readonly CabMember[],
  options: WriteCabOptions,
): Promise<WriteCabResult> {
  if (members.length === 0) throw unsupported('a cabinet needs at least one member');
  if (members.length > MAX_FILES)
    throw unsupported(`a cabinet holds at most ${MAX_FILES} members, not ${members.length}`);
  const reserveBytes = options.reserve?.header ?? 0;
  if (!Number.isInteger(reserveBytes) || reserveBytes < 0 || reserveBytes > MAX_HEADER_RESERVE_BYTES) {
    throw unsupported(`header reserve of ${reserveBytes} bytes is outside 0..${MAX_HEADER_RESERVE_BYTES}`);
  }
  if ((options.reserve?.data?.length ?? 0) > reserveBytes) throw unsupported('reserve data is larger than the reserve');

  const prepared = await Promise.all(members.map((m) => prepare(m, options.now ?? (() => new Date()))));
  const total = prepared.reduce((n, p) => n + p.size, 0);
  if (total > FOLDER_MAX_BYTES)
    throw unsupported(`members total ${total} bytes; one cabinet folder holds at most ${FOLDER_MAX_BYTES}`);
  const blocks = Math.max(1, Math.ceil(total / BLOCK_MAX_BYTES));
  if (blocks > FOLDER_MAX_BLOCKS) throw unsupported('too many data blocks for one folder');

  const hasReserve = options.reserve !== undefined;
  const headerBytes = CFHEADER_BYTES + (hasReserve ? CFHEADER_RESERVE_FIELDS_BYTES + reserveBytes : 0);
  const filesOffset = headerBytes + CFFOLDER_BYTES;
  const dataOffset = filesOffset + prepared.reduce((n, p) => n + CFFILE_BYTES + p.nameBytes.length + 1, 0);

  const head = Buffer.alloc(dataOffset);
  head.writeUInt32LE(CAB_SIGNATURE, 0);
  // cbCabinet (offset 8) is patched at the end, once the compressed size is known.
  head.writeUInt32LE(filesOffset, 16);
  head[24] = 3; // version 1.3
  head[25] = 1;
  head.writeUInt16LE(1, 26);
  head.writeUInt16LE(prepared.length, 28);
  head.writeUInt16LE(hasReserve ? FLAG_RESERVE_PRESENT : 0, 30);
  head.writeUInt16LE((options.setId ?? 0) & 0xffff, 32);
  head.writeUInt16LE(0, 34);
  let pos = CFHEADER_BYTES;
  if (hasReserve) {
    head.writeUInt16LE(reserveBytes, pos);
    pos += CFHEADER_RESERVE_FIELDS_BYTES; // folder and data reserves stay 0
    if (options.reserve?.data) head.set(options.reserve.data, pos);
    pos += reserveBytes;
  }
  head.writeUInt32LE(dataOffset, pos);
  head.writeUInt16LE(blocks, pos + 4);
  head.writeUInt16LE(options.compression === 'mszip' ? COMPRESSION.mszip : COMPRESSION.none, pos + 6);
  pos += CFFOLDER_BYTES;
  let offsetInFolder = 0;
  for (const p of prepared) {
    const { date, time } = toDosDateTime(p.date);
    head.writeUInt32LE(p.size, pos);
    head.writeUInt32LE(offsetInFolder, pos + 4);
    head.writeUInt16LE(0, pos + 8);
    head.writeUInt16LE(date, pos + 10);
    head.writeUInt16LE(time, pos + 12);
    head.writeUInt16LE(p.attributes, pos + 14);
    p.nameBytes.copy(head, pos + CFFILE_BYTES);
    pos += CFFILE_BYTES + p.nameBytes.length + 1;
    offsetInFolder += p.size;
  }

  const handle = await open(outPath, 'w');
  try {
    let written = 0;
    let batch: Buffer[] = [head];
    let batchBytes = head.length;
    const flush = async (): Promise<void> => {
      const buf = Buffer.concat(batch);
      await handle.write(buf, 0, buf.length, written);
      written += buf.length;
      batch = [];
      batchBytes = 0;
    };
    let previous: Buffer | undefined;
    let blockCount = 0;
    const emit = async (block: Buffer): Promise<void> => {
      let payload = block;
      if (options.compression === 'mszip') {
        // Each block is "CK" + a complete raw deflate stream that may refer into the previous block.
        payload = Buffer.concat([Buffer.from('CK'), deflateRawSync(block, previous ? { dictionary: previous } : {})]);
        previous = block;
      }
      const cfdata = Buffer.alloc(CFDATA_BYTES);
      cfdata.writeUInt32LE(blockChecksum(payload, payload.length, block.length), 0);
      cfdata.writeUInt16LE(payload.length, 4);
      cfdata.writeUInt16LE(block.length, 6);
      batch.push(cfdata, payload);
      batchBytes += CFDATA_BYTES + payload.length;
      blockCount++;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
    };

    const block = Buffer.alloc(BLOCK_MAX_BYTES);
    let fill = 0;
    for (const p of prepared) {
      let got = 0;
      for await (const chunk of sourceChunks(p.member.source)) {
        got += chunk.length;
        if (got > p.size) break;
        let at = 0;
        while (at < chunk.length) {
          const n = Math.min(chunk.length - at, BLOCK_MAX_BYTES - fill);
          chunk.copy(block, fill, at, at + n);
          fill += n;
          at += n;
          if (fill === BLOCK_MAX_BYTES) {
            await emit(Buffer.from(block));
            fill = 0;
          }
        }
      }
      if (got !== p.size) {
        throw new CabError(
          'CAB_SOURCE_CHANGED',
          `${describeSource(p.member)} changed size while it was being written (${p.size} → ${got} bytes); write the cabinet again.`,
          { member: p.member.name },
        );
      }
    }
    if (fill > 0 || total === 0) await emit(Buffer.from(block.subarray(0, fill)));
    await flush();
    const size = written;
    const sizeField = Buffer.alloc(4);
    sizeField.writeUInt32LE(size, 0);
    await handle.write(sizeField, 0, 4, 8);
    return {
      size,
      blocks: blockCount,
      ...(hasReserve ? { headerReserveOffset: CFHEADER_BYTES + CFHEADER_RESERVE_FIELDS_BYTES } : {}),
    };
  } finally {
    await handle.close();
  }
}

async function prepare(member: CabMember, now: () => Date): Promise<PreparedMember> {
  const stored = member.name.replace(/\//g, '\\');
  const nameBytes = Buffer.from(stored, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length >= MAX_STRING_BYTES || nameBytes.includes(0)) {
    throw unsupported(
      `member name ${JSON.stringify(member.name)} must be 1..${MAX_STRING_BYTES - 1} bytes without NUL`,
    );
  }
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(stored);
  let size: number;
  let date = member.date;
  if (typeof member.source === 'string') {
    const st = await stat(member.source);
    if (!st.isFile()) throw unsupported(`${member.source} is not a regular file`);
    size = st.size;
    date ??= st.mtime;
  } else size = member.source.length;
  const attributes = (member.attributes ?? ATTR_ARCHIVE) | (ascii ? 0 : ATTR_UTF8_NAME);
  return { member, nameBytes, size, date: date ?? now(), attributes };
}

async function* sourceChunks(source: string | Uint8Array): AsyncGenerator<Buffer> {
  if (typeof source !== 'string') {
    yield Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return;
  }
  for await (const chunk of createReadStream(source, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
}

function describeSource(member: CabMember): string {
  return typeof member.source === 'string' ? member.source : `member ${member.name}`;
}
