/**
 * Streaming digests of byte ranges of a file: the only place the verifier and the signer touch
 * the (possibly 1 GB) cabinet body. Memory stays at one read buffer whatever the file size.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ByteRange } from './cab-layout.ts';
import type { DigestName } from './oids.ts';

/** Read size for hashing; large reads keep syscall overhead far below the hash cost. */
export const HASH_READ_CHUNK_BYTES = 1024 * 1024;

/** Feeds file bytes [start, end) into `hash`, chunk by chunk. */
export async function hashFileRange(hash: Hash, path: string, range: ByteRange, signal?: AbortSignal): Promise<void> {
  if (range.end <= range.start) return;
  // createReadStream's `end` is inclusive.
  const stream = createReadStream(path, {
    start: range.start,
    end: range.end - 1,
    highWaterMark: HASH_READ_CHUNK_BYTES,
    ...(signal ? { signal } : {}),
  });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}

/**
 * Digest of the concatenation of `ranges` of a file.
 *
 * @example await digestFileRanges('wsusscn2.cab', signedDigestRanges(off), 'sha256') // Buffer(32)
 */
export async function digestFileRanges(
  path: string,
  ranges: readonly ByteRange[],
  algorithm: DigestName,
  signal?: AbortSignal,
): Promise<Buffer> {
  const hash = createHash(algorithm);
  for (const range of ranges) await hashFileRange(hash, path, range, signal);
  return hash.digest();
}
