/**
 * The CFDATA checksum of MS-CAB: XOR of the block data read as little-endian 32-bit words (the
 * 1–3 trailing bytes packed big-end-first, as Microsoft's cabinet.dll does), seeded with the
 * checksum of the data and then folded over the cbData/cbUncomp header fields.
 */

/** XOR-fold `data` into `seed`. Pure; returns an unsigned 32-bit value. */
export function cabChecksum(data: Uint8Array, seed: number): number {
  let sum = seed | 0;
  const words = data.length >>> 2;
  let i = 0;
  for (let w = 0; w < words; w++, i += 4) {
    sum ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
  }
  let tail = 0;
  switch (data.length & 3) {
    case 3:
      tail |= data[i++]! << 16; // falls through
    case 2:
      tail |= data[i++]! << 8; // falls through
    case 1:
      tail |= data[i]!;
  }
  return (sum ^ tail) >>> 0;
}

/** The checksum stored in a CFDATA header for `data` with the given sizes. */
export function blockChecksum(data: Uint8Array, compressedSize: number, uncompressedSize: number): number {
  const sizes = new Uint8Array([
    compressedSize & 0xff,
    compressedSize >>> 8,
    uncompressedSize & 0xff,
    uncompressedSize >>> 8,
  ]);
  return cabChecksum(sizes, cabChecksum(data, 0));
}
