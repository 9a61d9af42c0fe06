/**
 * A CatalogSource over a wsusscn2.cab, read with Patchline's own CAB reader (src/catalog/cab/).
 *
 * The outer cab holds index.xml and the inner cabs; an inner cab is copied out to a temp file
 * (the reader opens files, and nested cabinets need random access), read, and deleted at once,
 * so the disk holds at most package.cab plus one shard at a time. Members of a shard are read in
 * cabinet order through one FolderSession per folder, so each folder is decompressed once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFile, memberChunks, openCab, type Cabinet } from './cab/index.ts';
import { FolderSession } from './cab/folder-stream.ts';
import type { CatalogSource, ShardBlob } from './source.ts';

async function readAll(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Opens `file` (a wsusscn2-shaped cab) as a CatalogSource; close() removes its temp files. */
export async function cabSource(file: string, options: { tempDir?: string } = {}): Promise<CatalogSource> {
  const outer = await openCab(file);
  const work = await mkdtemp(join(options.tempDir ?? tmpdir(), 'patchline-catalog-'));
  let closed = false;

  /** Copies an inner cab out, opens it, runs fn, and removes the copy. */
  async function withInner<T>(
    name: string,
    signal: AbortSignal | undefined,
    fn: (cab: Cabinet) => AsyncGenerator<T>,
  ): Promise<AsyncGenerator<T>> {
    const path = await extractFile(outer, name, work, signal);
    if (!path) throw new Error(`could not extract ${name}`);
    const inner = await openCab(path);
    return (async function* () {
      try {
        yield* fn(inner);
      } finally {
        await inner.close();
        await rm(path, { force: true });
      }
    })();
  }

  return {
    description: file,
    async indexXml(signal) {
      return (await readAll(memberChunks(outer, 'index.xml', undefined, signal))).toString('utf8');
    },
    async *packageXml(signal) {
      yield* await withInner('package.cab', signal, (cab) => memberChunks(cab, 'package.xml', undefined, signal));
    },
    async *shardBlobs(shardName, signal) {
      yield* await withInner(shardName, signal, async function* (cab) {
        let session: FolderSession | undefined;
        for (const member of cab.files) {
          const folder = cab.folders[member.folderIndex]!;
          if (!session || session.folder !== folder || session.offset > member.offsetInFolder)
            session = new FolderSession(folder);
          const blob: ShardBlob = {
            name: member.name,
            bytes: await readAll(memberChunks(cab, member, session, signal)),
          };
          yield blob;
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await outer.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}
