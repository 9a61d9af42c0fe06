/**
 * Quantum decoder for CAB folders (window 2^10..2^21), following the format as documented by
 * Matthew Russotto and implemented in libmspack's qtmd.c: an adaptive arithmetic coder over
 * eight symbol models, with literals and three kinds of matches. As for LZX, each CFDATA block is
 * one 32 KiB frame and the coder restarts (H, L, C) at every frame; models and window carry on.
 * Quantum cabinets are rare (1990s software), so this favours clarity over speed.
 */
import { corrupt, unsupported } from './errors.ts';

export const QUANTUM_FRAME_BYTES = 32768;
export const QUANTUM_MIN_WINDOW_BITS = 10;
export const QUANTUM_MAX_WINDOW_BITS = 21;
/** How far the arithmetic coder may read past a block's bytes (it reads ahead) before we call it corrupt. */
const INPUT_OVERRUN_BYTES = 8;
/** Model frequencies are rescaled once the total passes this (the format's constant). */
const MODEL_RESCALE_TOTAL = 3800;
const MODEL_FULL_REBUILD_EVERY = 50;

const POSITION_BASE = new Uint32Array(42);
const EXTRA_BITS = new Uint8Array(42);
for (let i = 0, offset = 0; i < 42; i++) {
  POSITION_BASE[i] = offset;
  EXTRA_BITS[i] = (i < 2 ? 0 : i - 2) >> 1;
  offset += 1 << EXTRA_BITS[i]!;
}
const LENGTH_BASE = new Uint8Array(27);
const LENGTH_EXTRA = new Uint8Array(27);
for (let i = 0, offset = 0; i < 26; i++) {
  LENGTH_BASE[i] = offset;
  LENGTH_EXTRA[i] = (i < 2 ? 0 : i - 2) >> 2;
  offset += 1 << LENGTH_EXTRA[i]!;
}
LENGTH_BASE[26] = 254;
LENGTH_EXTRA[26] = 0;

/** An adaptive frequency model: symbols sorted by frequency, cumulative counts, one sentinel. */
class Model {
  shiftsLeft = 4;
  readonly sym: Uint16Array;
  readonly cumfreq: Uint16Array;
  constructor(
    start: number,
    readonly entries: number,
  ) {
    this.sym = new Uint16Array(entries + 1);
    this.cumfreq = new Uint16Array(entries + 1);
    for (let i = 0; i <= entries; i++) {
      this.sym[i] = start + i;
      this.cumfreq[i] = entries - i;
    }
  }

  rescale(): void {
    const { cumfreq, sym, entries } = this;
    if (--this.shiftsLeft) {
      for (let i = entries - 1; i >= 0; i--) {
        cumfreq[i] = cumfreq[i]! >> 1;
        if (cumfreq[i]! <= cumfreq[i + 1]!) cumfreq[i] = cumfreq[i + 1]! + 1;
      }
      return;
    }
    this.shiftsLeft = MODEL_FULL_REBUILD_EVERY;
    for (let i = 0; i < entries; i++) {
      cumfreq[i] = (cumfreq[i]! - cumfreq[i + 1]! + 1) >> 1;
    }
    // Selection sort by decreasing frequency; its (in)stability is part of the format.
    for (let i = 0; i < entries - 1; i++) {
      for (let j = i + 1; j < entries; j++) {
        if (cumfreq[i]! < cumfreq[j]!) {
          const f = cumfreq[i]!;
          cumfreq[i] = cumfreq[j]!;
          cumfreq[j] = f;
          const s = sym[i]!;
          sym[i] = sym[j]!;
          sym[j] = s;
        }
      }
    }
    for (let i = entries - 1; i >= 0; i--) cumfreq[i] = cumfreq[i]! + cumfreq[i + 1]!;
  }
}

export class QuantumDecoder {
  private readonly window: Uint8Array;
  private readonly mask: number;
  private windowPos = 0;
  private readonly literalModels: Model[];
  private readonly model4: Model;
  private readonly model5: Model;
  private readonly model6: Model;
  private readonly model6len: Model;
  private readonly model7: Model;
  private input: Uint8Array = new Uint8Array(0);
  private bitPos = 0;
  private high = 0xffff;
  private low = 0;
  private code = 0;
  private failed: Error | undefined;

  constructor(windowBits: number) {
    if (windowBits < QUANTUM_MIN_WINDOW_BITS || windowBits > QUANTUM_MAX_WINDOW_BITS) {
      throw unsupported(`Quantum window of 2^${windowBits} bytes is outside 2^10..2^21`, { windowBits });
    }
    this.window = new Uint8Array(1 << windowBits);
    this.mask = (1 << windowBits) - 1;
    const slots = windowBits * 2;
    this.literalModels = [new Model(0, 64), new Model(64, 64), new Model(128, 64), new Model(192, 64)];
    this.model4 = new Model(0, Math.min(slots, 24));
    this.model5 = new Model(0, Math.min(slots, 36));
    this.model6 = new Model(0, slots);
    this.model6len = new Model(0, 27);
    this.model7 = new Model(0, 7);
  }

  /** Decode the `outputSize` bytes of one CFDATA block (one frame). */
  decodeBlock(data: Uint8Array, outputSize: number): Buffer {
    if (this.failed) throw this.failed;
    try {
      return this.decodeUnsafe(data, outputSize);
    } catch (error) {
      this.failed = error instanceof Error ? error : new Error(String(error));
      throw this.failed;
    }
  }

  private decodeUnsafe(data: Uint8Array, outputSize: number): Buffer {
    if (outputSize < 1 || outputSize > QUANTUM_FRAME_BYTES) throw corrupt(`Quantum frame of ${outputSize} bytes`);
    // libmspack appends one 0xFF after each block so the coder can realign; do the same.
    this.input = new Uint8Array(data.length + 1);
    this.input.set(data);
    this.input[data.length] = 0xff;
    this.bitPos = 0;
    this.high = 0xffff;
    this.low = 0;
    this.code = this.readBits(16);

    const out = Buffer.alloc(outputSize);
    const window = this.window;
    const mask = this.mask;
    let produced = 0;
    let frameTodo = QUANTUM_FRAME_BYTES;
    while (produced < outputSize) {
      const selector = this.symbol(this.model7);
      if (selector < 4) {
        const b = this.symbol(this.literalModels[selector]!);
        window[this.windowPos] = b;
        this.windowPos = (this.windowPos + 1) & mask;
        out[produced++] = b;
        frameTodo--;
        continue;
      }
      let matchLength: number;
      let matchOffset: number;
      if (selector === 4 || selector === 5) {
        const slot = this.symbol(selector === 4 ? this.model4 : this.model5);
        matchOffset = POSITION_BASE[slot]! + this.readBits(EXTRA_BITS[slot]!) + 1;
        matchLength = selector === 4 ? 3 : 4;
      } else if (selector === 6) {
        const lenSlot = this.symbol(this.model6len);
        matchLength = LENGTH_BASE[lenSlot]! + this.readBits(LENGTH_EXTRA[lenSlot]!) + 5;
        const slot = this.symbol(this.model6);
        matchOffset = POSITION_BASE[slot]! + this.readBits(EXTRA_BITS[slot]!) + 1;
      } else {
        throw corrupt(`Quantum selector ${selector} is invalid`);
      }
      frameTodo -= matchLength;
      if (frameTodo < 0) throw corrupt('Quantum match runs past the end of the 32 KiB frame');
      const wrapsWindow = this.windowPos + matchLength > window.length;
      if (!wrapsWindow && matchOffset > this.windowPos && matchOffset - this.windowPos > window.length) {
        throw corrupt('Quantum match offset is beyond the window');
      }
      let src = this.windowPos - matchOffset;
      for (let k = 0; k < matchLength; k++) {
        const b = window[src++ & mask]!;
        window[this.windowPos] = b;
        this.windowPos = (this.windowPos + 1) & mask;
        if (produced < outputSize) out[produced++] = b;
      }
    }
    return out;
  }

  private readBit(): number {
    const byteIndex = this.bitPos >>> 3;
    if (byteIndex >= this.input.length + INPUT_OVERRUN_BYTES)
      throw corrupt('Quantum data runs past the end of its block');
    const byte = byteIndex < this.input.length ? this.input[byteIndex]! : 0;
    const bit = (byte >>> (7 - (this.bitPos & 7))) & 1;
    this.bitPos++;
    return bit;
  }

  private readBits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | this.readBit();
    return v;
  }

  /** Decode one symbol from `model` and update the model and the coder state. */
  private symbol(model: Model): number {
    const { cumfreq, sym } = model;
    let H = this.high;
    let L = this.low;
    let C = this.code;
    let range = ((H - L) & 0xffff) + 1;
    const scaled = (((C - L + 1) * cumfreq[0]! - 1) | 0) >>> 0;
    const symf = Math.floor(scaled / range) & 0xffff;
    let i = 1;
    for (; i < model.entries; i++) if (cumfreq[i]! <= symf) break;
    const result = sym[i - 1]!;

    range = (H - L + 1) >>> 0;
    const total = cumfreq[0]!;
    H = (L + Math.floor((Math.imul(cumfreq[i - 1]!, range) >>> 0) / total) - 1) & 0xffff;
    L = (L + Math.floor((Math.imul(cumfreq[i]!, range) >>> 0) / total)) & 0xffff;
    do {
      i--;
      cumfreq[i] = cumfreq[i]! + 8;
    } while (i > 0);
    if (cumfreq[0]! > MODEL_RESCALE_TOTAL) model.rescale();

    // Renormalise; at most 16 rounds before the top bits of L and H differ.
    for (;;) {
      if ((L & 0x8000) !== (H & 0x8000)) {
        if (L & 0x4000 && !(H & 0x4000)) {
          C ^= 0x4000;
          L &= 0x3fff;
          H |= 0x4000;
        } else break;
      }
      L = (L << 1) & 0xffff;
      H = ((H << 1) | 1) & 0xffff;
      C = ((C << 1) | this.readBit()) & 0xffff;
    }
    this.high = H;
    this.low = L;
    this.code = C;
    return result;
  }
}
