/**
 * Catalog sync: fetch wsusscn2.cab only when it changed, resume a broken download, and move the
 * file into place only once it is complete and its signature checks out.
 *
 * Change detection, in order (see reference/windows-update-agent.md §6):
 *  1. HEAD: if Content-Length and Last-Modified (or the ETag) match the copy we hold, nothing
 *     changed and no body is transferred. Microsoft sometimes ignores conditional headers, which
 *     is why this comes first.
 *  2. GET with If-None-Match / If-Modified-Since: a 304 also means unchanged.
 *  3. A partial download left by an earlier attempt continues with Range + If-Range, so a
 *     metered link never pays twice for the same bytes.
 * Files: `<dir>/wsusscn2.cab` (current), `.meta.json` (its validators and digest), and
 * `.partial` + `.partial.json` while downloading.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { PatchlineError } from '../domain/errors.ts';

/** Microsoft's published location (the fwlink LinkID=74689 resolves here). */
export const MICROSOFT_CATALOG_URL =
  'https://catalog.s.download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab';
export const CATALOG_FILE = 'wsusscn2.cab';
/** A stalled connection is dropped after this long without a byte; the next sync resumes. */
export const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;

export interface CatalogMeta {
  readonly url: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly size: number;
  readonly sha256: string;
  readonly downloadedAt: string;
}

interface PartialMeta {
  readonly url: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly size: number | null;
}

export type SyncProgress =
  | { readonly phase: 'check'; readonly url: string }
  | {
      readonly phase: 'download';
      readonly bytes: number;
      readonly totalBytes: number | null;
      readonly resumedFrom: number;
    }
  | { readonly phase: 'verify'; readonly file: string };

export interface SyncOptions {
  readonly url: string;
  /** Directory holding the current cab and its metadata. */
  readonly dir: string;
  /** HTTP(S) dispatcher: a proxy agent, or undefined for direct connections. */
  readonly dispatcher?: Dispatcher;
  /** Checks the downloaded file (Authenticode); throws to reject it. Runs before it replaces the current one. */
  readonly verify: (file: string) => Promise<void>;
  readonly onProgress?: (p: SyncProgress) => void;
  readonly signal?: AbortSignal;
  /** Download even when the validators say nothing changed. */
  readonly force?: boolean;
}

export interface SyncResult {
  readonly changed: boolean;
  /** Path of the current cab (new or unchanged). */
  readonly file: string;
  readonly meta: CatalogMeta;
  /** How the "unchanged" verdict was reached, or how the file was fetched. */
  readonly how: 'head-unchanged' | 'not-modified' | 'downloaded' | 'resumed';
  /** Body bytes transferred by this sync. */
  readonly bytesTransferred: number;
}

const paths = (dir: string) => ({
  current: join(dir, CATALOG_FILE),
  meta: join(dir, `${CATALOG_FILE}.meta.json`),
  partial: join(dir, `${CATALOG_FILE}.partial`),
  partialMeta: join(dir, `${CATALOG_FILE}.partial.json`),
});

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A damaged metadata file only costs a fresh download; say so rather than fail the sync.
    return null;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

const header = (headers: Record<string, string | string[] | undefined>, name: string): string | null => {
  const v = headers[name];
  return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
};

/** Same resource as the copy we hold? ETag when both have one, else size + Last-Modified. */
export function sameResource(
  meta: Pick<CatalogMeta, 'etag' | 'lastModified' | 'size'>,
  etag: string | null,
  lastModified: string | null,
  size: number | null,
): boolean {
  if (meta.etag && etag) return meta.etag === etag;
  return size !== null && size === meta.size && lastModified !== null && lastModified === meta.lastModified;
}

function networkError(url: string, cause: unknown): PatchlineError {
  const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).name;
  return new PatchlineError(
    'CATALOG_DOWNLOAD_FAILED',
    `Could not download the catalog from ${url} (${code}: ${(cause as Error).message}). Check the network or proxy (HTTPS_PROXY, --proxy); an interrupted download resumes on the next sync.`,
    { cause, context: { url } },
  );
}

async function send(
  url: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  options: SyncOptions,
): Promise<{ url: string; res: Dispatcher.ResponseData }> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(current, {
        method,
        headers: { 'user-agent': 'Patchline catalog sync', 'cache-control': 'no-cache', ...headers },
        dispatcher: options.dispatcher,
        signal: options.signal,
        headersTimeout: IDLE_TIMEOUT_MS,
        bodyTimeout: IDLE_TIMEOUT_MS,
      });
    } catch (cause) {
      if (options.signal?.aborted) throw cause;
      throw networkError(current, cause);
    }
    const location = header(res.headers, 'location');
    if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304 && location) {
      await res.body.dump();
      current = new URL(location, current).toString();
      continue;
    }
    return { url: current, res };
  }
  throw new PatchlineError('CATALOG_DOWNLOAD_FAILED', `Too many redirects from ${url}.`, { context: { url } });
}

/** Counts body bytes and reports progress as they pass. */
function counter(start: number, total: number | null, report: (bytes: number) => void): Transform {
  let bytes = start;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      report(bytes);
      done(null, chunk);
    },
  });
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Brings `<dir>/wsusscn2.cab` up to date with `url`.
 * @example await syncCatalog({ url: MICROSOFT_CATALOG_URL, dir, verify: (f) => verifyCab(f) })
 */
export async function syncCatalog(options: SyncOptions): Promise<SyncResult> {
  const p = paths(options.dir);
  await mkdir(options.dir, { recursive: true });
  const meta = await readJson<CatalogMeta>(p.meta);
  const haveCurrent = meta !== null && (await fileSize(p.current)) === meta.size;
  options.onProgress?.({ phase: 'check', url: options.url });

  // 1. HEAD: cheapest "nothing changed".
  if (haveCurrent && !options.force) {
    const { res } = await send(options.url, 'HEAD', {}, options);
    await res.body.dump();
    if (res.statusCode === 200) {
      const size = Number(header(res.headers, 'content-length') ?? NaN);
      if (
        sameResource(
          meta,
          header(res.headers, 'etag'),
          header(res.headers, 'last-modified'),
          Number.isFinite(size) ? size : null,
        )
      ) {
        return { changed: false, file: p.current, meta, how: 'head-unchanged', bytesTransferred: 0 };
      }
    }
  }

  // 2. Resume a partial download of the same resource, or start clean.
  const partialMeta = await readJson<PartialMeta>(p.partialMeta);
  let offset = (await fileSize(p.partial)) ?? 0;
  const canResume =
    offset > 0 &&
    partialMeta !== null &&
    partialMeta.url === options.url &&
    (partialMeta.etag !== null || partialMeta.lastModified !== null);
  if (!canResume && offset > 0) {
    await rm(p.partial, { force: true });
    offset = 0;
  }

  const headers: Record<string, string> = {};
  if (canResume) {
    headers.range = `bytes=${offset}-`;
    headers['if-range'] = (partialMeta.etag ?? partialMeta.lastModified)!;
  } else if (haveCurrent && !options.force) {
    if (meta.etag) headers['if-none-match'] = meta.etag;
    if (meta.lastModified) headers['if-modified-since'] = meta.lastModified;
  }

  const { res } = await send(options.url, 'GET', headers, options);
  if (res.statusCode === 304 && haveCurrent) {
    await res.body.dump();
    return { changed: false, file: p.current, meta, how: 'not-modified', bytesTransferred: 0 };
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    await res.body.dump();
    throw new PatchlineError(
      'CATALOG_DOWNLOAD_FAILED',
      `The catalog server answered HTTP ${res.statusCode} for ${options.url}. Check the URL (--source) and try again later.`,
      { context: { url: options.url, status: res.statusCode } },
    );
  }

  const etag = header(res.headers, 'etag');
  const lastModified = header(res.headers, 'last-modified');
  let total: number | null;
  let resumedFrom = 0;
  if (res.statusCode === 206) {
    const range = /bytes (\d+)-(\d+)\/(\d+)/.exec(header(res.headers, 'content-range') ?? '');
    if (!range || Number(range[1]) !== offset) {
      await res.body.dump();
      await rm(p.partial, { force: true });
      throw new PatchlineError(
        'CATALOG_DOWNLOAD_FAILED',
        `The server resumed at the wrong place (${header(res.headers, 'content-range')}); the partial file was discarded, sync again.`,
        { context: { url: options.url } },
      );
    }
    total = Number(range[3]);
    resumedFrom = offset;
  } else {
    // 200: the server sent the whole file (unchanged validators were ignored, or If-Range failed).
    if (haveCurrent && !options.force) {
      const size = Number(header(res.headers, 'content-length') ?? NaN);
      if (sameResource(meta, etag, lastModified, Number.isFinite(size) ? size : null)) {
        res.body.destroy();
        return { changed: false, file: p.current, meta, how: 'not-modified', bytesTransferred: 0 };
      }
    }
    const length = header(res.headers, 'content-length');
    total = length === null ? null : Number(length);
    offset = 0;
  }
  await writeJsonAtomic(p.partialMeta, { url: options.url, etag, lastModified, size: total } satisfies PartialMeta);

  let bytesTransferred = 0;
  const progress = counter(offset, total, (bytes) => {
    bytesTransferred = bytes - resumedFrom;
    options.onProgress?.({ phase: 'download', bytes, totalBytes: total, resumedFrom });
  });
  try {
    await pipeline(res.body, progress, createWriteStream(p.partial, { flags: resumedFrom > 0 ? 'a' : 'w' }), {
      signal: options.signal,
    });
  } catch (cause) {
    if (options.signal?.aborted) throw cause;
    throw new PatchlineError(
      'CATALOG_DOWNLOAD_INTERRUPTED',
      `The catalog download from ${options.url} broke off after ${((await fileSize(p.partial)) ?? 0).toLocaleString('en-US')} bytes (${(cause as Error).message}). Run the sync again: it resumes where it stopped.`,
      { cause, context: { url: options.url } },
    );
  }

  const size = (await fileSize(p.partial)) ?? 0;
  if (total !== null && size !== total) {
    throw new PatchlineError(
      'CATALOG_DOWNLOAD_INTERRUPTED',
      `The catalog download ended at ${size} of ${total} bytes. Run the sync again: it resumes where it stopped.`,
      { context: { url: options.url } },
    );
  }

  options.onProgress?.({ phase: 'verify', file: p.partial });
  try {
    await options.verify(p.partial);
  } catch (error) {
    // Never keep, and never resume from, bytes that failed verification.
    await rm(p.partial, { force: true });
    await rm(p.partialMeta, { force: true });
    throw error;
  }

  const newMeta: CatalogMeta = {
    url: options.url,
    etag,
    lastModified,
    size,
    sha256: await sha256File(p.partial),
    downloadedAt: new Date().toISOString(),
  };
  await rename(p.partial, p.current);
  await writeJsonAtomic(p.meta, newMeta);
  await rm(p.partialMeta, { force: true });
  return {
    changed: true,
    file: p.current,
    meta: newMeta,
    how: resumedFrom > 0 ? 'resumed' : 'downloaded',
    bytesTransferred,
  };
}

/** The cab we currently hold and its metadata, or null. */
export async function currentCatalogFile(dir: string): Promise<{ file: string; meta: CatalogMeta } | null> {
  const p = paths(dir);
  const meta = await readJson<CatalogMeta>(p.meta);
  if (!meta || (await fileSize(p.current)) !== meta.size) return null;
  return { file: p.current, meta };
}
