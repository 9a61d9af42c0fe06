/**
 * The cache's metadata: which files are complete, when they were cached and when some host last
 * needed them (cleanup's clock). Kept behind a small interface so the server can put it in its
 * store; `memoryContentIndex` serves unit tests and `jsonFileContentIndex` a single server
 * process (written with write-to-temp + rename, so a crash leaves the old or the new file, never
 * half of one). The bytes of a partial download keep their own state beside them on disk
 * (fetch.ts), so resuming works whatever backs this index.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { PatchlineError } from '../domain/errors.ts';

export interface ContentRecord {
  readonly key: string;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly size: number;
  readonly url: string;
  readonly fileName: string | null;
  readonly cachedAt: string;
  /** Last time the file was asked for or reported needed; cleanup counts its grace from here. */
  readonly lastNeededAt: string;
}

export interface ContentIndex {
  get(key: string): ContentRecord | undefined;
  /** By either digest (hex): agents may ask by SHA-1 or SHA-256. */
  find(digest: string): ContentRecord | undefined;
  put(record: ContentRecord): void;
  /** Several at once (one write for a file-backed index). */
  putAll(records: readonly ContentRecord[]): void;
  delete(key: string): void;
  list(): ContentRecord[];
}

/** In-memory index (unit tests, benchmarks). */
export function memoryContentIndex(initial: readonly ContentRecord[] = []): ContentIndex {
  const byKey = new Map<string, ContentRecord>();
  // Agents may name a file by SHA-1 while it is keyed by SHA-256: a second map answers both.
  const byDigest = new Map<string, string>();
  const put = (r: ContentRecord): void => {
    byKey.set(r.key, r);
    for (const d of [r.key, r.sha1, r.sha256]) if (d) byDigest.set(d, r.key);
  };
  initial.forEach(put);
  return {
    get: (key) => byKey.get(key),
    find: (digest) => {
      const key = byDigest.get(digest);
      return key === undefined ? undefined : byKey.get(key);
    },
    put,
    putAll: (records) => records.forEach(put),
    delete: (key) => {
      const r = byKey.get(key);
      byKey.delete(key);
      for (const d of [r?.key, r?.sha1, r?.sha256]) if (d && byDigest.get(d) === key) byDigest.delete(d);
    },
    list: () => [...byKey.values()],
  };
}

/** A JSON file beside the cached files; loaded once, rewritten atomically on every change. */
export function jsonFileContentIndex(path: string): ContentIndex {
  let records: ContentRecord[] = [];
  try {
    records = (JSON.parse(readFileSync(path, 'utf8')) as { files: ContentRecord[] }).files;
  } catch (error) {
    // A first start has no index yet; anything else (a damaged file) must not be silently reset.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PatchlineError(
        'CONTENT_INDEX_UNREADABLE',
        `The content cache's index ${path} cannot be read: ${(error as Error).message}. Restore it from a backup, or delete it and the files/ beside it to start the cache empty.`,
        { cause: error, context: { file: path } },
      );
    }
  }
  const memory = memoryContentIndex(records);
  const save = (): void => {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ files: memory.list() }));
    renameSync(tmp, path);
  };
  return {
    get: memory.get,
    find: memory.find,
    list: memory.list,
    put(record) {
      memory.put(record);
      save();
    },
    putAll(records) {
      memory.putAll(records);
      if (records.length > 0) save();
    },
    delete(key) {
      memory.delete(key);
      save();
    },
  };
}
