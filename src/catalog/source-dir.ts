/**
 * A CatalogSource over an unpacked catalog directory, laid out as cabextract leaves it:
 *   index.xml, package/package.xml, package2/c/<rev>, package2/x/<rev>, package2/l/en/<rev>, …
 * (a shard `packageN.cab` unpacked into `packageN/`). Used for the real vuls fixture in tests and
 * for sites that unpack the cab with their own tools.
 */
import { createReadStream } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CatalogSource, ShardBlob } from './source.ts';

const READ_CHUNK_BYTES = 256 * 1024;

export function directorySource(dir: string): CatalogSource {
  return {
    description: dir,
    async indexXml() {
      return readFile(join(dir, 'index.xml'), 'utf8');
    },
    async *packageXml(signal) {
      yield* createReadStream(join(dir, 'package', 'package.xml'), {
        highWaterMark: READ_CHUNK_BYTES,
        signal,
      }) as AsyncIterable<Buffer>;
    },
    async *shardBlobs(shardName, signal) {
      const root = join(dir, shardName.replace(/\.cab$/i, ''));
      for (const file of await walk(root)) {
        signal?.throwIfAborted();
        const blob: ShardBlob = { name: relative(root, file), bytes: await readFile(file) };
        yield blob;
      }
    },
    async close() {},
  };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // A shard the index names but the directory lacks: no blobs (like revisions without data).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw error;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}
