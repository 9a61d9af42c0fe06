/**
 * Canonical Huffman decoding tables for LZX (MSB-first codes, lengths 1–16). A table is a flat
 * Int32Array: a primary level indexed by the next `primaryBits` bits and, for longer codes, one
 * sub-level per long prefix. Entries are `(symbol << 5) | codeLength`; a negative primary entry
 * is minus the start of a sub-level. Only complete codes are accepted (as libmspack does); a code
 * with no symbols at all yields an `empty` table that fails when a symbol is read from it.
 */

export const HUFFMAN_MAX_CODE_BITS = 16;

export interface HuffmanTable {
  readonly table: Int32Array;
  readonly primaryBits: number;
  /** Longest code length present; sub-levels are indexed by the next `maxLength` bits. */
  readonly maxLength: number;
  readonly empty: boolean;
}

const EMPTY_TABLE: HuffmanTable = { table: new Int32Array(0), primaryBits: 0, maxLength: 0, empty: true };

/**
 * Build a decoding table for `count` symbols with the given code lengths.
 * Returns undefined when the lengths do not form a complete prefix code.
 */
export function buildHuffmanTable(lengths: Uint8Array, count: number, primaryBits: number): HuffmanTable | undefined {
  const perLength = new Int32Array(HUFFMAN_MAX_CODE_BITS + 1);
  let maxLength = 0;
  for (let s = 0; s < count; s++) {
    const len = lengths[s]!;
    if (len > HUFFMAN_MAX_CODE_BITS) return undefined;
    if (len) {
      perLength[len]!++;
      if (len > maxLength) maxLength = len;
    }
  }
  if (maxLength === 0) return EMPTY_TABLE;
  // Kraft: the code must be neither over-subscribed nor incomplete.
  let left = 1;
  for (let len = 1; len <= HUFFMAN_MAX_CODE_BITS; len++) {
    left = (left << 1) - perLength[len]!;
    if (left < 0) return undefined;
  }
  if (left !== 0) return undefined;

  // Canonical codes: codes of length L follow all shorter codes, in symbol order.
  const nextCode = new Int32Array(HUFFMAN_MAX_CODE_BITS + 1);
  for (let len = 1, code = 0; len <= HUFFMAN_MAX_CODE_BITS; len++) {
    nextCode[len] = code;
    code = (code + perLength[len]!) << 1;
  }

  const bits = Math.min(primaryBits, maxLength);
  const subBits = maxLength - bits;
  const codes = new Int32Array(count);
  let longPrefixes = 0;
  let lastPrefix = -1;
  for (let s = 0; s < count; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    codes[s] = nextCode[len]!++;
  }
  // Long codes sorted by code share prefixes contiguously; count distinct prefixes.
  const longSymbols: number[] = [];
  for (let s = 0; s < count; s++) if (lengths[s]! > bits) longSymbols.push(s);
  longSymbols.sort((a, b) => (codes[a]! << (maxLength - lengths[a]!)) - (codes[b]! << (maxLength - lengths[b]!)));
  for (const s of longSymbols) {
    const prefix = codes[s]! >>> (lengths[s]! - bits);
    if (prefix !== lastPrefix) {
      longPrefixes++;
      lastPrefix = prefix;
    }
  }

  const primarySize = 1 << bits;
  const table = new Int32Array(primarySize + longPrefixes * (1 << subBits));
  let nextSub = primarySize;
  for (let s = 0; s < count; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    const entry = (s << 5) | len;
    if (len <= bits) {
      const start = codes[s]! << (bits - len);
      table.fill(entry, start, start + (1 << (bits - len)));
    } else {
      const prefix = codes[s]! >>> (len - bits);
      let sub = table[prefix]!;
      if (sub === 0) {
        sub = -nextSub;
        table[prefix] = sub;
        nextSub += 1 << subBits;
      }
      const low = codes[s]! & ((1 << (len - bits)) - 1);
      const start = -sub + (low << (maxLength - len));
      table.fill(entry, start, start + (1 << (maxLength - len)));
    }
  }
  return { table, primaryBits: bits, maxLength, empty: false };
}
