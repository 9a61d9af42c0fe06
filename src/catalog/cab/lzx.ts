/**
 * LZX decoder for CAB folders (window 2^15..2^21), written from the LZX format description and
 * checked against libmspack's behaviour. The folder is decoded one CFDATA block at a time: each
 * block carries exactly one 32 KiB output frame (the last may be shorter), the bit reader
 * restarts at every block, while LZX block state (trees, repeated offsets R0–R2, the remaining
 * length of the current LZX block, E8 settings) carries from frame to frame. A new decoder is
 * made for every folder, which is the reset the format requires at folder start.
 *
 * Bits: 16-bit little-endian words read most-significant bit first into a 32-bit buffer; the
 * buffer is refilled exactly when libmspack's would be, which matters where an uncompressed block
 * throws buffered bits away.
 */
import { corrupt, unsupported } from './errors.ts';
import { buildHuffmanTable, type HuffmanTable } from './huffman.ts';

export const LZX_FRAME_BYTES = 32768;
export const LZX_MIN_WINDOW_BITS = 15;
export const LZX_MAX_WINDOW_BITS = 21;

const NUM_CHARS = 256;
const MIN_MATCH = 2;
const NUM_PRIMARY_LENGTHS = 7;
const NUM_SECONDARY_LENGTHS = 249;
const PRETREE_SYMBOLS = 20;
const ALIGNED_SYMBOLS = 8;
const LENGTH_SYMBOLS = NUM_SECONDARY_LENGTHS + 1;
const PRETREE_TABLE_BITS = 6;
const MAIN_TABLE_BITS = 12;
const LENGTH_TABLE_BITS = 12;
const ALIGNED_TABLE_BITS = 7;
/** Position slots per window size 2^15..2^21. */
const POSITION_SLOTS = [30, 32, 34, 36, 38, 42, 50] as const;
/** E8 translation stops after this many frames (1 GiB of output), as in the format. */
const E8_MAX_FRAMES = 32768;
/** Frames shorter than this are never E8-translated: the last 10 bytes are always left alone. */
const E8_MIN_FRAME_BYTES = 11;
/** Slack for reading ahead past the end of a block's data (one 16-bit word, plus margin). */
const INPUT_OVERRUN_BYTES = 4;
const INPUT_PADDING_BYTES = 64;
/** Runs of zero lengths may overshoot the last symbol by this much without error (as in libmspack). */
const LENGTH_TABLE_SAFETY = 64;

const BLOCK_VERBATIM = 1;
const BLOCK_ALIGNED = 2;
const BLOCK_UNCOMPRESSED = 3;

const EXTRA_BITS = new Uint8Array(51);
const POSITION_BASE = new Uint32Array(51);
for (let i = 0, base = 0; i < 51; i++) {
  EXTRA_BITS[i] = i < 4 ? 0 : i < 36 ? (i >> 1) - 1 : 17;
  POSITION_BASE[i] = base;
  base += 1 << EXTRA_BITS[i]!;
}

export class LzxDecoder {
  private readonly window: Uint8Array;
  private readonly windowSize: number;
  private readonly mainSymbols: number;
  private readonly mainLengths = new Uint8Array(NUM_CHARS + 50 * 8 + LENGTH_TABLE_SAFETY);
  private readonly lengthLengths = new Uint8Array(LENGTH_SYMBOLS + LENGTH_TABLE_SAFETY);
  private readonly alignedLengths = new Uint8Array(ALIGNED_SYMBOLS);
  private readonly pretreeLengths = new Uint8Array(PRETREE_SYMBOLS);
  private mainTable: HuffmanTable | undefined;
  private lengthTable: HuffmanTable | undefined;
  private alignedTable: HuffmanTable | undefined;
  private input = new Uint8Array(LZX_FRAME_BYTES * 2 + INPUT_PADDING_BYTES);
  private inputEnd = 0;
  private ip = 0;
  private bitBuf = 0;
  private bitsLeft = 0;

  private r0 = 1;
  private r1 = 1;
  private r2 = 1;
  private headerRead = false;
  private blockType = 0;
  private blockLength = 0;
  private blockRemaining = 0;
  private intelFileSize = 0;
  private intelStarted = false;
  private windowPos = 0;
  private frame = 0;
  /** Bytes output by the frames decoded so far. */
  private outputOffset = 0;
  private failed: Error | undefined;

  constructor(windowBits: number) {
    if (windowBits < LZX_MIN_WINDOW_BITS || windowBits > LZX_MAX_WINDOW_BITS) {
      throw unsupported(`LZX window of 2^${windowBits} bytes is outside 2^15..2^21`, { windowBits });
    }
    this.windowSize = 1 << windowBits;
    this.window = new Uint8Array(this.windowSize);
    this.mainSymbols = NUM_CHARS + POSITION_SLOTS[windowBits - LZX_MIN_WINDOW_BITS]! * 8;
  }

  /**
   * Decode one frame of `frameSize` bytes (32768 except for a folder's last block) from the
   * compressed bytes of one CFDATA block. Returns a fresh buffer. After an error every further
   * call fails with the same error: LZX state cannot be trusted past a corrupt frame.
   */
  decodeFrame(data: Uint8Array, frameSize: number): Buffer {
    if (this.failed) throw this.failed;
    try {
      return this.decodeFrameUnsafe(data, frameSize);
    } catch (error) {
      this.failed = error instanceof Error ? error : new Error(String(error));
      throw this.failed;
    }
  }

  private decodeFrameUnsafe(data: Uint8Array, frameSize: number): Buffer {
    if (frameSize < 1 || frameSize > LZX_FRAME_BYTES) throw corrupt(`LZX frame of ${frameSize} bytes`);
    if (this.input.length < data.length + INPUT_PADDING_BYTES)
      this.input = new Uint8Array(data.length + INPUT_PADDING_BYTES);
    this.input.set(data, 0);
    this.input.fill(0, data.length, data.length + INPUT_PADDING_BYTES);
    this.inputEnd = data.length;
    this.ip = 0;
    this.bitBuf = 0;
    this.bitsLeft = 0;

    if (!this.headerRead) {
      let high = 0;
      let low = 0;
      if (this.readBits(1)) {
        high = this.readBits(16);
        low = this.readBits(16);
      }
      this.intelFileSize = (high << 16) | low | 0;
      this.headerRead = true;
    }

    const frameStart = this.windowPos;
    let todo = frameSize;
    while (todo > 0) {
      if (this.blockRemaining === 0) this.readBlockHeader();
      let run = Math.min(this.blockRemaining, todo);
      todo -= run;
      this.blockRemaining -= run;
      if (this.blockType === BLOCK_UNCOMPRESSED) this.copyStored(run);
      else run = this.decodeSymbols(run);
      // A match may not end beyond the current LZX block.
      if (run < 0) {
        if (-run > this.blockRemaining) throw corrupt('LZX match runs past the end of its block');
        this.blockRemaining += run;
      }
    }
    if (this.windowPos - frameStart !== frameSize) throw corrupt('LZX data decodes beyond the 32 KiB frame');
    if (this.ip > this.inputEnd + INPUT_OVERRUN_BYTES) throw corrupt('LZX data runs past the end of its block');

    const out = Buffer.from(this.window.subarray(frameStart, frameStart + frameSize));
    if (
      this.intelStarted &&
      this.intelFileSize !== 0 &&
      this.frame < E8_MAX_FRAMES &&
      frameSize >= E8_MIN_FRAME_BYTES
    ) {
      undoE8Translation(out, this.outputOffset, this.intelFileSize);
    }
    this.outputOffset += frameSize;
    this.frame++;
    if (this.windowPos === this.windowSize) this.windowPos = 0;
    return out;
  }

  // ---- bit reading (MSB-first over 16-bit little-endian words) ----

  private refill(): void {
    const ip = this.ip;
    if (ip > this.inputEnd + INPUT_OVERRUN_BYTES) throw corrupt('LZX data runs past the end of its block');
    this.bitBuf |= (this.input[ip]! | (this.input[ip + 1]! << 8)) << (16 - this.bitsLeft);
    this.bitsLeft += 16;
    this.ip = ip + 2;
  }

  private ensure(n: number): void {
    while (this.bitsLeft < n) this.refill();
  }

  /** Read n bits, 1 <= n <= 17. */
  private readBits(n: number): number {
    this.ensure(n);
    const v = this.bitBuf >>> (32 - n);
    this.bitBuf <<= n;
    this.bitsLeft -= n;
    return v;
  }

  private readSymbol(t: HuffmanTable): number {
    if (t.empty) throw corrupt('LZX needs a symbol from an empty Huffman tree');
    this.ensure(16);
    let e = t.table[this.bitBuf >>> (32 - t.primaryBits)]!;
    if (e < 0) e = t.table[-e + ((this.bitBuf >>> (32 - t.maxLength)) & ((1 << (t.maxLength - t.primaryBits)) - 1))]!;
    const len = e & 31;
    this.bitBuf <<= len;
    this.bitsLeft -= len;
    return e >>> 5;
  }

  // ---- block headers and trees ----

  private readBlockHeader(): void {
    if (this.blockType === BLOCK_UNCOMPRESSED && this.blockLength & 1) {
      // An odd-sized stored block is followed by one padding byte.
      if (this.ip >= this.inputEnd) throw corrupt('LZX data runs past the end of its block');
      this.ip++;
    }
    this.blockType = this.readBits(3);
    const high = this.readBits(16);
    const low = this.readBits(8);
    this.blockLength = this.blockRemaining = (high << 8) | low;
    switch (this.blockType) {
      case BLOCK_ALIGNED:
        for (let i = 0; i < ALIGNED_SYMBOLS; i++) this.alignedLengths[i] = this.readBits(3);
        this.alignedTable = this.build(this.alignedLengths, ALIGNED_SYMBOLS, ALIGNED_TABLE_BITS, 'aligned');
      // falls through: the rest of an aligned header is a verbatim header
      case BLOCK_VERBATIM:
        this.readLengths(this.mainLengths, 0, NUM_CHARS);
        this.readLengths(this.mainLengths, NUM_CHARS, this.mainSymbols);
        this.mainTable = this.build(this.mainLengths, this.mainSymbols, MAIN_TABLE_BITS, 'main');
        if (this.mainTable.empty) throw corrupt('LZX main tree has no symbols');
        if (this.mainLengths[0xe8] !== 0) this.intelStarted = true;
        this.readLengths(this.lengthLengths, 0, NUM_SECONDARY_LENGTHS);
        this.lengthTable = this.build(this.lengthLengths, LENGTH_SYMBOLS, LENGTH_TABLE_BITS, 'length');
        break;
      case BLOCK_UNCOMPRESSED: {
        this.intelStarted = true;
        // Align to the byte stream: drop the buffered bits (reading a word first if none are).
        if (this.bitsLeft === 0) this.ensure(16);
        this.bitsLeft = 0;
        this.bitBuf = 0;
        if (this.ip + 12 > this.inputEnd) throw corrupt('LZX stored block header runs past the end of its block');
        const v = new DataView(this.input.buffer, this.input.byteOffset + this.ip, 12);
        this.r0 = v.getUint32(0, true);
        this.r1 = v.getUint32(4, true);
        this.r2 = v.getUint32(8, true);
        this.ip += 12;
        break;
      }
      default:
        throw corrupt(`LZX block type ${this.blockType} is invalid`);
    }
  }

  private build(lengths: Uint8Array, count: number, bits: number, name: string): HuffmanTable {
    const table = buildHuffmanTable(lengths, count, bits);
    if (!table) throw corrupt(`LZX ${name} tree is not a valid Huffman code`);
    return table;
  }

  /** Read code lengths for symbols [first, last) as deltas coded with a pretree. */
  private readLengths(lens: Uint8Array, first: number, last: number): void {
    for (let i = 0; i < PRETREE_SYMBOLS; i++) this.pretreeLengths[i] = this.readBits(4);
    const pretree = this.build(this.pretreeLengths, PRETREE_SYMBOLS, PRETREE_TABLE_BITS, 'pretree');
    for (let x = first; x < last;) {
      const code = this.readSymbol(pretree);
      if (code === 17 || code === 18) {
        const run = code === 17 ? this.readBits(4) + 4 : this.readBits(5) + 20;
        if (x + run > lens.length) throw corrupt('LZX code lengths run past the tree');
        lens.fill(0, x, x + run);
        x += run;
      } else if (code === 19) {
        const run = this.readBits(1) + 4;
        const delta = this.readSymbol(pretree);
        if (x + run > lens.length) throw corrupt('LZX code lengths run past the tree');
        let z = lens[x]! - delta;
        if (z < 0) z += 17;
        lens.fill(z, x, x + run);
        x += run;
      } else {
        let z = lens[x]! - code;
        if (z < 0) z += 17;
        lens[x++] = z;
      }
    }
  }

  // ---- block bodies ----

  private copyStored(run: number): void {
    if (this.ip + run > this.inputEnd) throw corrupt('LZX stored block runs past the end of its block');
    this.window.set(this.input.subarray(this.ip, this.ip + run), this.windowPos);
    this.ip += run;
    this.windowPos += run;
  }

  /**
   * Decode literals and matches until at least `run` bytes are out; returns run minus bytes
   * produced (negative when the last match went further). The hot loop keeps the bit reader in
   * locals for speed.
   */
  private decodeSymbols(run: number): number {
    const window = this.window;
    const windowSize = this.windowSize;
    const input = this.input;
    const overrunLimit = this.inputEnd + INPUT_OVERRUN_BYTES;
    const main = this.mainTable!;
    const mainTable = main.table;
    const mainShift = 32 - main.primaryBits;
    const mainSubShift = 32 - main.maxLength;
    const mainSubMask = (1 << (main.maxLength - main.primaryBits)) - 1;
    const aligned = this.blockType === BLOCK_ALIGNED;
    let bitBuf = this.bitBuf;
    let bitsLeft = this.bitsLeft;
    let ip = this.ip;
    let wp = this.windowPos;
    let r0 = this.r0;
    let r1 = this.r1;
    let r2 = this.r2;

    const sync = (): void => {
      this.bitBuf = bitBuf;
      this.bitsLeft = bitsLeft;
      this.ip = ip;
    };
    const load = (): void => {
      bitBuf = this.bitBuf;
      bitsLeft = this.bitsLeft;
      ip = this.ip;
    };

    while (run > 0) {
      // ENSURE_BITS(16) then a main-tree symbol
      while (bitsLeft < 16) {
        if (ip > overrunLimit) throw corrupt('LZX data runs past the end of its block');
        bitBuf |= (input[ip]! | (input[ip + 1]! << 8)) << (16 - bitsLeft);
        bitsLeft += 16;
        ip += 2;
      }
      let e = mainTable[bitBuf >>> mainShift]!;
      if (e < 0) e = mainTable[-e + ((bitBuf >>> mainSubShift) & mainSubMask)]!;
      const len = e & 31;
      bitBuf <<= len;
      bitsLeft -= len;
      const sym = e >>> 5;
      if (sym < NUM_CHARS) {
        window[wp++] = sym;
        run--;
        continue;
      }

      const element = sym - NUM_CHARS;
      let matchLength = element & NUM_PRIMARY_LENGTHS;
      if (matchLength === NUM_PRIMARY_LENGTHS) {
        sync();
        if (this.lengthTable!.empty) throw corrupt('LZX needs a match length but the length tree is empty');
        matchLength += this.readSymbol(this.lengthTable!);
        load();
      }
      matchLength += MIN_MATCH;

      const slot = element >>> 3;
      let matchOffset: number;
      if (slot === 0) matchOffset = r0;
      else if (slot === 1) {
        matchOffset = r1;
        r1 = r0;
        r0 = matchOffset;
      } else if (slot === 2) {
        matchOffset = r2;
        r2 = r0;
        r0 = matchOffset;
      } else {
        const extra = EXTRA_BITS[slot]!;
        matchOffset = POSITION_BASE[slot]! - 2;
        if (extra >= 3 && aligned) {
          sync();
          if (extra > 3) matchOffset += this.readBits(extra - 3) << 3;
          matchOffset += this.readSymbol(this.alignedTable!);
          load();
        } else if (extra) {
          while (bitsLeft < extra) {
            if (ip > overrunLimit) throw corrupt('LZX data runs past the end of its block');
            bitBuf |= (input[ip]! | (input[ip + 1]! << 8)) << (16 - bitsLeft);
            bitsLeft += 16;
            ip += 2;
          }
          matchOffset += bitBuf >>> (32 - extra);
          bitBuf <<= extra;
          bitsLeft -= extra;
        }
        r2 = r1;
        r1 = r0;
        r0 = matchOffset;
      }

      if (wp + matchLength > windowSize) throw corrupt('LZX match runs over the end of the window');
      if (matchOffset > wp) {
        // The source wraps to the end of the window: only valid once that much has been output.
        if (matchOffset > this.outputOffset) throw corrupt('LZX match refers to data before the start of the folder');
        const j = matchOffset - wp;
        if (j > windowSize) throw corrupt('LZX match offset is beyond the window');
        let src = windowSize - j;
        let n = matchLength;
        if (j < n) {
          for (let k = 0; k < j; k++) window[wp++] = window[src++]!;
          n -= j;
          src = 0;
        }
        for (let k = 0; k < n; k++) window[wp++] = window[src++]!;
      } else if (matchOffset >= matchLength) {
        window.copyWithin(wp, wp - matchOffset, wp - matchOffset + matchLength);
        wp += matchLength;
      } else {
        // Overlapping copy: byte by byte so repeated patterns expand.
        let src = wp - matchOffset;
        for (let k = 0; k < matchLength; k++) window[wp++] = window[src++]!;
      }
      run -= matchLength;
    }

    sync();
    this.windowPos = wp;
    this.r0 = r0;
    this.r1 = r1;
    this.r2 = r2;
    return run;
  }
}

/**
 * Undo the encoder's E8 preprocessing in place: each 0xE8 (x86 CALL) byte followed by an
 * absolute 32-bit target gets its relative offset back. `frameOffset` is the frame's position in
 * the folder's output; the last 10 bytes of a frame are never touched.
 */
export function undoE8Translation(frame: Uint8Array, frameOffset: number, fileSize: number): void {
  const end = frame.length - 10;
  let curpos = frameOffset | 0;
  let i = 0;
  while (i < end) {
    if (frame[i++] !== 0xe8) {
      curpos++;
      continue;
    }
    const abs = frame[i]! | (frame[i + 1]! << 8) | (frame[i + 2]! << 16) | (frame[i + 3]! << 24);
    if (abs >= -curpos && abs < fileSize) {
      const rel = abs >= 0 ? abs - curpos : abs + fileSize;
      frame[i] = rel & 0xff;
      frame[i + 1] = (rel >>> 8) & 0xff;
      frame[i + 2] = (rel >>> 16) & 0xff;
      frame[i + 3] = (rel >>> 24) & 0xff;
    }
    i += 4;
    curpos += 5;
  }
}
