/**
 * A deliberately tiny LZX encoder used only by tests and the benchmark: one verbatim block of
 * literals (every byte coded in 8 bits), split into 32 KiB frames padded to 16 bits, the way a
 * CAB folder stores them. It exercises tree reading, frames and the literal path of the decoder,
 * whose output must be the input again. Not for production: it does not compress.
 */
const FRAME_BYTES = 32768;

class BitWriter {
  private words: number[] = [];
  private acc = 0;
  private bits = 0;

  write(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >>> i) & 1);
      if (++this.bits === 16) {
        this.words.push(this.acc);
        this.acc = 0;
        this.bits = 0;
      }
    }
  }

  /** Pad to a 16-bit boundary and return the bytes written since the last take. */
  take(): Buffer {
    if (this.bits > 0) this.write(0, 16 - this.bits);
    const out = Buffer.alloc(this.words.length * 2);
    this.words.forEach((w, i) => out.writeUInt16LE(w, i * 2));
    this.words = [];
    return out;
  }
}

/** Encode `data` as LZX frames for a window of 2^windowBits; returns one buffer per frame. */
export function encodeLzxLiterals(data: Uint8Array, windowBits: number): Buffer[] {
  const mainSymbols = 256 + [30, 32, 34, 36, 38, 42, 50][windowBits - 15]! * 8;
  const w = new BitWriter();
  // Pretree: symbols 0 and 9 get 1-bit codes ("0" and "1"), all others none.
  const pretree = (): void => {
    for (let i = 0; i < 20; i++) w.write(i === 0 || i === 9 ? 1 : 0, 4);
  };
  w.write(0, 1); // no E8 translation
  w.write(1, 3); // verbatim block
  w.write(data.length >>> 8, 16);
  w.write(data.length & 0xff, 8);
  pretree();
  for (let i = 0; i < 256; i++) w.write(1, 1); // delta 9: 0 → 8, every literal gets an 8-bit code
  pretree();
  for (let i = 256; i < mainSymbols; i++) w.write(0, 1); // delta 0: no matches
  pretree();
  for (let i = 0; i < 249; i++) w.write(0, 1); // empty length tree
  const frames: Buffer[] = [];
  for (let i = 0; i < data.length; i++) {
    w.write(data[i]!, 8);
    if ((i + 1) % FRAME_BYTES === 0 || i + 1 === data.length) frames.push(w.take());
  }
  return frames;
}
