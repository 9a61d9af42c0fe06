/**
 * Positional reads from a cabinet file with a small read-ahead window, so that walking CFDATA
 * blocks costs one system call per MiB instead of two per block. Memory stays bounded by the
 * window whatever the file size.
 */
import { open, type FileHandle } from 'node:fs/promises';

export const READ_AHEAD_BYTES = 1024 * 1024;

export interface RandomAccessFile {
  readonly path: string;
  readonly size: number;
  /** Up to `length` bytes at `position`; shorter only at the end of the file. */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openRandomAccessFile(path: string): Promise<RandomAccessFile> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return new BufferedFile(path, handle, size);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

class BufferedFile implements RandomAccessFile {
  private cache: Buffer = Buffer.alloc(0);
  private cacheStart = 0;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  async read(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.size);
    if (position >= end) return Buffer.alloc(0);
    if (position >= this.cacheStart && end <= this.cacheStart + this.cache.length) {
      return this.cache.subarray(position - this.cacheStart, end - this.cacheStart);
    }
    const want = Math.min(Math.max(end - position, READ_AHEAD_BYTES), this.size - position);
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.handle.read(buf, got, want - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.cache = buf.subarray(0, got);
    this.cacheStart = position;
    return this.cache.subarray(0, Math.min(end - position, got));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}
