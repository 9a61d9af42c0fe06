/**
 * Reading a folder's data: walk its CFDATA blocks across the cabinets it spans (joining a block
 * split between two cabinets), verify checksums, decompress block by block, and serve byte ranges
 * of the folder's output. A `FolderSession` is sequential, as the codecs are: reading a member
 * decompresses the folder from the start (or from where the session is) up to that member.
 * Memory: one block in, one block out, plus the codec's window (≤ 2 MiB for LZX:21).
 */
import { CabError, corrupt, unsupported } from './errors.ts';
import { blockChecksum } from './checksum.ts';
import {
  BLOCK_INPUT_MAX_BYTES,
  BLOCK_MAX_BYTES,
  CFDATA_BYTES,
  COMPRESSION,
  COMPRESSION_MASK,
  FOLDER_MAX_BYTES,
} from './format.ts';
import type { CabFile, CabFolder } from './cabinet.ts';
import { LzxDecoder, LZX_FRAME_BYTES } from './lzx.ts';
import { MszipDecoder } from './mszip.ts';
import { QuantumDecoder } from './quantum.ts';

interface Block {
  readonly data: Buffer;
  readonly uncompressedSize: number;
  readonly last: boolean;
}

/** Reads the CFDATA blocks of one folder in order. */
class BlockReader {
  private block = 0;
  private segment = 0;
  private position: number;

  constructor(private readonly folder: CabFolder) {
    this.position = folder.segments[0]!.dataOffset;
  }

  async next(): Promise<Block> {
    const folder = this.folder;
    if (this.block >= folder.blockCount) {
      throw corrupt(`folder ${folder.index} has ${folder.blockCount} data blocks but its members need more`, {
        folder: folder.index,
      });
    }
    const index = this.block++;
    const pieces: Buffer[] = [];
    let total = 0;
    // A block split across cabinets has uncompressed size 0 in every piece but the last.
    for (;;) {
      const { part } = folder.segments[this.segment]!;
      const reserve = part.header.reserve.data;
      const head = await part.file.read(this.position, CFDATA_BYTES + reserve);
      if (head.length < CFDATA_BYTES + reserve)
        throw corrupt(`data block ${index} of folder ${folder.index} is truncated`, { file: part.file.path });
      const view = new DataView(head.buffer, head.byteOffset, CFDATA_BYTES);
      const checksum = view.getUint32(0, true);
      const compressedSize = view.getUint16(4, true);
      const uncompressedSize = view.getUint16(6, true);
      total += compressedSize;
      if (total > BLOCK_INPUT_MAX_BYTES)
        throw corrupt(`data block ${index} of folder ${folder.index} is ${total} bytes, more than any codec produces`);
      if (uncompressedSize > BLOCK_MAX_BYTES)
        throw corrupt(`data block ${index} of folder ${folder.index} claims ${uncompressedSize} bytes of output`);
      // Copy: the file's read-ahead buffer is reused by later reads.
      const data = Buffer.from(await part.file.read(this.position + CFDATA_BYTES + reserve, compressedSize));
      if (data.length < compressedSize)
        throw corrupt(`data block ${index} of folder ${folder.index} is truncated`, { file: part.file.path });
      if (checksum !== 0 && blockChecksum(data, compressedSize, uncompressedSize) !== checksum) {
        throw corrupt(`data block ${index} of folder ${folder.index} fails its checksum`, { file: part.file.path });
      }
      this.position += CFDATA_BYTES + reserve + compressedSize;
      pieces.push(data);
      if (uncompressedSize !== 0) {
        return {
          data: pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces),
          uncompressedSize,
          last: this.block >= folder.blockCount,
        };
      }
      this.segment++;
      if (this.segment >= folder.segments.length) {
        throw new CabError(
          'CAB_INCOMPLETE',
          `folder ${folder.index} continues into the next cabinet of the set, which was not found. Put all parts of the set in one directory.`,
          { folder: folder.index },
        );
      }
      this.position = folder.segments[this.segment]!.dataOffset;
    }
  }
}

type BlockDecoder = (block: Block) => Buffer;

function makeDecoder(folder: CabFolder): BlockDecoder {
  const method = folder.compressionType & COMPRESSION_MASK;
  const windowBits = (folder.compressionType >>> 8) & 0x1f;
  switch (method) {
    case COMPRESSION.none:
      return (block) => block.data;
    case COMPRESSION.mszip: {
      const mszip = new MszipDecoder();
      return (block) => mszip.decodeBlock(block.data);
    }
    case COMPRESSION.lzx: {
      const lzx = new LzxDecoder(windowBits);
      return (block) => {
        if (!block.last && block.uncompressedSize !== LZX_FRAME_BYTES) {
          throw corrupt(
            `LZX block decompresses to ${block.uncompressedSize} bytes; only a folder's last block may be shorter than ${LZX_FRAME_BYTES}`,
          );
        }
        return lzx.decodeFrame(block.data, block.uncompressedSize);
      };
    }
    case COMPRESSION.quantum: {
      const quantum = new QuantumDecoder(windowBits);
      return (block) => quantum.decodeBlock(block.data, block.uncompressedSize);
    }
    default:
      throw unsupported(`folder ${folder.index} uses unknown compression type ${method}`, { folder: folder.index });
  }
}

/**
 * Why a member cannot be extracted before any data is read (libmspack's checks, in its order),
 * or undefined when it can be tried. Pure.
 */
export function memberProblem(file: CabFile, folder: CabFolder): CabError | undefined {
  if (
    file.offsetInFolder > FOLDER_MAX_BYTES ||
    file.size > FOLDER_MAX_BYTES ||
    file.offsetInFolder + file.size > FOLDER_MAX_BYTES
  ) {
    return corrupt(
      `member ${file.name} claims ${file.size} bytes at offset ${file.offsetInFolder}, beyond what a folder can hold`,
      { member: file.name },
    );
  }
  if (folder.missingStart) {
    return new CabError(
      'CAB_INCOMPLETE',
      `member ${file.name} starts in an earlier cabinet of the set, which was not found. Put all parts of the set in one directory and open the first.`,
      { member: file.name },
    );
  }
  if (file.offsetInFolder + file.size > folder.blockCount * BLOCK_MAX_BYTES) {
    return new CabError(
      'CAB_INCOMPLETE',
      `member ${file.name} extends beyond the data blocks of its folder: the cabinet set is incomplete`,
      { member: file.name },
    );
  }
  return undefined;
}

/** Sequential reader of one folder's decompressed output. */
export class FolderSession {
  /** Folder output offset of the first byte of `pending`. */
  private position = 0;
  private pending: Buffer = Buffer.alloc(0);
  private readonly reader: BlockReader;
  private decoder: BlockDecoder | undefined;
  private failure: unknown;

  constructor(readonly folder: CabFolder) {
    this.reader = new BlockReader(folder);
  }

  /** Where the next unread byte is in the folder's output. */
  get offset(): number {
    return this.position;
  }

  /**
   * Yield the folder's bytes [start, start + length) in chunks of at most 32 KiB.
   * `start` must not be before `offset`. Errors stick: a failed session fails every later read.
   */
  async *read(start: number, length: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
    if (start < this.position)
      throw new RangeError(`folder session is at ${this.position}, cannot go back to ${start}`);
    let skip = start - this.position;
    let remaining = length;
    while (remaining > 0) {
      signal?.throwIfAborted();
      if (this.pending.length === 0) await this.fill();
      if (skip > 0) {
        const n = Math.min(skip, this.pending.length);
        this.consume(n);
        skip -= n;
        continue;
      }
      const n = Math.min(remaining, this.pending.length);
      const chunk = this.pending.subarray(0, n);
      this.consume(n);
      remaining -= n;
      yield chunk;
    }
  }

  private consume(n: number): void {
    this.pending = this.pending.subarray(n);
    this.position += n;
  }

  private async fill(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    try {
      this.decoder ??= makeDecoder(this.folder);
      const block = await this.reader.next();
      this.pending = this.decoder(block);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }
}
