/**
 * The content cache (DESIGN.md §8): `ensure` downloads a payload file once however many callers
 * ask at the same moment (single flight keyed by digest), verifies it, and stores it by digest;
 * `lookup`/`serve` hand out only verified files; `cleanup` deletes what no host has needed for a
 * grace period and says how many bytes it freed.
 *
 * Single flight is per process: the server keeps one cache per data directory (several replicas
 * sharing a directory would each download; a later issue, see docs/decisions.md). A download that
 * breaks is retried with Range from what is on disk; a file failing verification is deleted and
 * fetched again from scratch, up to `maxAttempts`, and never served.
 */
import { mkdirSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchlineError } from '../domain/errors.ts';
import { normalizeSpec, type ContentFileSpec, type NormalizedSpec } from './digest.ts';
import {
  DigestMismatchError,
  discardPartial,
  fetchVerified,
  filePath,
  hashFile,
  partialPath,
  type FetchLayout,
} from './fetch.ts';
import { jsonFileContentIndex, type ContentIndex, type ContentRecord } from './index-store.ts';
import { serveContent, type ServeRequest, type ServeResult } from './serve.ts';

const DAY_MS = 86_400_000;
/** WAPT's daily cleanup keeps nothing unneeded; a week's grace lets a re-imaged or late host still find its files. */
export const DEFAULT_CLEANUP_GRACE_MS = 7 * DAY_MS;
/** A digest mismatch or a broken connection is retried this many times in all before the request fails. */
export const DEFAULT_MAX_ATTEMPTS = 3;

export interface CachedFile {
  readonly key: string;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly size: number;
  readonly path: string;
  readonly cachedAt: string;
}

export type ContentEvent =
  | { readonly kind: 'download-started'; readonly key: string; readonly url: string; readonly resumeFrom: number }
  | { readonly kind: 'progress'; readonly key: string; readonly bytes: number }
  | { readonly kind: 'cached'; readonly key: string; readonly size: number; readonly resumedFrom: number }
  | { readonly kind: 'rejected'; readonly key: string; readonly reason: string }
  | { readonly kind: 'retry'; readonly key: string; readonly attempt: number; readonly error: string };

export interface ContentCacheOptions {
  /** Directory holding `files/`, `partial/` and (by default) `index.json`. */
  readonly dir: string;
  readonly index?: ContentIndex;
  readonly now?: () => Date;
  readonly maxAttempts?: number;
  /** Which upstream URLs may be fetched (SSRF guard). Default: any http(s) URL. */
  readonly allowUrl?: (url: URL) => boolean;
  readonly onEvent?: (event: ContentEvent) => void;
}

export interface CleanupReport {
  readonly deleted: readonly { readonly key: string; readonly size: number }[];
  readonly bytesFreed: number;
  /** Files still needed by some host. */
  readonly kept: number;
  /** Files no host needs, inside their grace period. */
  readonly inGrace: number;
}

export interface ContentStats {
  /** Bytes received from upstream since this cache was created. */
  readonly upstreamBytes: number;
  readonly servedBytes: number;
  readonly files: number;
  readonly bytes: number;
  readonly downloading: number;
}

export interface ContentCache {
  /** The file, downloaded and verified if it was not cached (joins an in-flight download). */
  ensure(spec: ContentFileSpec): Promise<CachedFile>;
  /** A verified cached file by SHA-1 or SHA-256 (hex), or null. Never starts a download. */
  lookup(digest: string): CachedFile | null;
  /** `cached`, `downloading` or `not-cached`, for the policy's delivery state. */
  state(digest: string): 'cached' | 'downloading' | 'not-cached';
  /** Answers a GET/HEAD for a digest (see serve.ts). */
  serve(digest: string, request: ServeRequest): ServeResult;
  /** Records that hosts still need these digests (cleanup's grace counts from the last time). */
  markNeeded(digests: Iterable<string>): void;
  /** Deletes files no host needs whose grace has passed; `needed` lists every digest some host needs. */
  cleanup(options: { needed: Iterable<string>; graceMs?: number }): Promise<CleanupReport>;
  stats(): ContentStats;
  /** Aborts downloads in flight (their partial bytes stay for a resume). Idempotent. */
  close(): Promise<void>;
}

/**
 * @example
 *   const cache = createContentCache({ dir: '/var/lib/patchline/content' });
 *   const file = await cache.ensure({ sha1: 'base64…', sha256: 'base64…', url: 'http://download.windowsupdate.com/…' });
 */
export function createContentCache(options: ContentCacheOptions): ContentCache {
  const layout: FetchLayout = { partialDir: join(options.dir, 'partial'), filesDir: join(options.dir, 'files') };
  mkdirSync(layout.partialDir, { recursive: true });
  mkdirSync(layout.filesDir, { recursive: true });
  const index = options.index ?? jsonFileContentIndex(join(options.dir, 'index.json'));
  const now = options.now ?? (() => new Date());
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const allowUrl = options.allowUrl ?? ((u: URL) => u.protocol === 'http:' || u.protocol === 'https:');
  const emit = options.onEvent ?? (() => undefined);
  const inflight = new Map<string, Promise<CachedFile>>();
  const abort = new AbortController();
  let upstreamBytes = 0;
  let servedBytes = 0;

  const toFile = (r: ContentRecord): CachedFile => ({
    key: r.key,
    sha1: r.sha1,
    sha256: r.sha256,
    size: r.size,
    path: filePath(layout, r.key),
    cachedAt: r.cachedAt,
  });

  const record = (spec: NormalizedSpec, size: number, at: string): ContentRecord => {
    const r: ContentRecord = {
      key: spec.key,
      sha1: spec.sha1,
      sha256: spec.sha256,
      size,
      url: spec.url,
      fileName: spec.fileName,
      cachedAt: at,
      lastNeededAt: at,
    };
    index.put(r);
    return r;
  };

  /** A file already in files/: trusted only if the index knows it with this size, or it hashes right (crash between rename and index write). */
  const adoptExisting = async (spec: NormalizedSpec): Promise<CachedFile | null> => {
    const path = filePath(layout, spec.key);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        if (index.get(spec.key)) index.delete(spec.key);
        return null;
      }
      throw error;
    }
    const known = index.get(spec.key);
    if (known && known.size === size) {
      index.put({ ...known, lastNeededAt: now().toISOString() });
      return toFile(known);
    }
    const actual = await hashFile(path);
    if (
      (!spec.sha256 || actual.sha256 === spec.sha256) &&
      (!spec.sha1 || actual.sha1 === spec.sha1) &&
      (spec.size === null || spec.size === actual.size)
    ) {
      return toFile(record(spec, actual.size, now().toISOString()));
    }
    await rm(path, { force: true });
    index.delete(spec.key);
    emit({ kind: 'rejected', key: spec.key, reason: 'a cached file no longer matches its digest; deleted' });
    return null;
  };

  const download = async (spec: NormalizedSpec): Promise<CachedFile> => {
    const existing = await adoptExisting(spec);
    if (existing) return existing;
    let lastError: unknown = null;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      abort.signal.throwIfAborted();
      const have = await stat(partialPath(layout, spec.key)).then(
        (s) => s.size,
        () => 0,
      );
      emit({ kind: 'download-started', key: spec.key, url: spec.url, resumeFrom: have });
      try {
        const result = await fetchVerified(spec, layout, {
          signal: abort.signal,
          onBytes: (n) => {
            upstreamBytes += n;
            emit({ kind: 'progress', key: spec.key, bytes: n });
          },
        });
        emit({ kind: 'cached', key: spec.key, size: result.size, resumedFrom: result.resumedFrom });
        return toFile(record(spec, result.size, now().toISOString()));
      } catch (error) {
        // Closed: report the close (the stream layer says only "AbortError"); the partial stays.
        if (abort.signal.aborted) throw abort.signal.reason;
        // Mismatch: the bytes are gone, start over. Upstream or network error mid-body: the
        // partial bytes stay and the next attempt resumes with Range.
        lastError = error;
        if (error instanceof DigestMismatchError) emit({ kind: 'rejected', key: spec.key, reason: error.message });
        if (attempt < maxAttempts) emit({ kind: 'retry', key: spec.key, attempt, error: (error as Error).message });
      }
    }
    if (lastError instanceof PatchlineError) throw lastError;
    throw new PatchlineError(
      'CONTENT_UPSTREAM_FAILED',
      `The payload ${spec.url} could not be downloaded after ${maxAttempts} attempts: ${(lastError as Error).message}`,
      { cause: lastError, context: { url: spec.url, digest: spec.key } },
    );
  };

  const cache: ContentCache = {
    ensure(input) {
      const spec = normalizeSpec(input);
      let url: URL;
      try {
        url = new URL(spec.url);
      } catch (error) {
        return Promise.reject(
          new PatchlineError('CONTENT_URL_REFUSED', `The payload URL ${JSON.stringify(spec.url)} is not a URL.`, {
            cause: error,
          }),
        );
      }
      if (!allowUrl(url))
        return Promise.reject(
          new PatchlineError(
            'CONTENT_URL_REFUSED',
            `The payload URL ${spec.url} is not on an allowed upstream; the cache fetches only from the configured update sources.`,
            { context: { url: spec.url } },
          ),
        );
      const running = inflight.get(spec.key);
      if (running) return running;
      const p = download(spec).finally(() => inflight.delete(spec.key));
      inflight.set(spec.key, p);
      return p;
    },
    lookup(digest) {
      const d = digest.toLowerCase();
      const r = index.find(d);
      return r ? toFile(r) : null;
    },
    state(digest) {
      const d = digest.toLowerCase();
      if (index.find(d)) return 'cached';
      for (const key of inflight.keys()) if (key === d) return 'downloading';
      return 'not-cached';
    },
    serve(digest, request) {
      const result = serveContent(cache.lookup(digest), request);
      servedBytes += result.bytes;
      return result;
    },
    markNeeded(digests) {
      const at = now().toISOString();
      const touched: ContentRecord[] = [];
      for (const d of digests) {
        const r = index.find(d.toLowerCase());
        if (r) touched.push({ ...r, lastNeededAt: at });
      }
      index.putAll(touched);
    },
    async cleanup({ needed, graceMs = DEFAULT_CLEANUP_GRACE_MS }) {
      const wanted = new Set([...needed].map((d) => d.toLowerCase()));
      const t = now().getTime();
      const deleted: { key: string; size: number }[] = [];
      let kept = 0;
      let inGrace = 0;
      const stillNeeded: ContentRecord[] = [];
      for (const r of index.list()) {
        if (wanted.has(r.key) || (r.sha1 && wanted.has(r.sha1)) || (r.sha256 && wanted.has(r.sha256))) {
          stillNeeded.push({ ...r, lastNeededAt: new Date(t).toISOString() });
          kept += 1;
          continue;
        }
        if (t - Date.parse(r.lastNeededAt) < graceMs) {
          inGrace += 1;
          continue;
        }
        // Index first: from here on nobody is handed the file, then its bytes go.
        index.delete(r.key);
        await rm(filePath(layout, r.key), { force: true });
        deleted.push({ key: r.key, size: r.size });
      }
      index.putAll(stillNeeded);
      // Partial downloads nobody is waiting for and nobody needs: their bytes are freed too.
      for (const name of await readdir(layout.partialDir)) {
        const key = name.replace(/\.json$/, '');
        if (name.endsWith('.json') || inflight.has(key) || wanted.has(key)) continue;
        const size = await stat(join(layout.partialDir, name)).then(
          (s) => s.size,
          () => 0,
        );
        await discardPartial(layout, key);
        deleted.push({ key, size });
      }
      return { deleted, bytesFreed: deleted.reduce((n, d) => n + d.size, 0), kept, inGrace };
    },
    stats() {
      const files = index.list();
      return {
        upstreamBytes,
        servedBytes,
        files: files.length,
        bytes: files.reduce((n, f) => n + f.size, 0),
        downloading: inflight.size,
      };
    },
    async close() {
      abort.abort(
        new PatchlineError(
          'CONTENT_CACHE_CLOSED',
          'The content cache was closed while a download was running; it resumes on the next request.',
        ),
      );
      await Promise.allSettled([...inflight.values()]);
    },
  };
  return cache;
}
