/**
 * Downloads one payload file into the cache's `partial/` area, resuming with Range, then checks
 * its size and digests and moves it into `files/` under its key. Only a verified file is ever
 * renamed into `files/`; a file that fails verification is deleted.
 *
 * Resume state lives beside the bytes: `partial/<key>` plus `partial/<key>.json` holding the URL
 * and the upstream's validator (ETag, else Last-Modified). After a restart the download asks for
 * `Range: bytes=<have>-` with `If-Range: <validator>`: a 206 appends, a 200 (the upstream file
 * changed, or the server ignores ranges) starts over. Without a validator nothing is resumed —
 * appending bytes of another version would only fail verification later.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PatchlineError } from '../domain/errors.ts';
import type { NormalizedSpec } from './digest.ts';

export interface FetchLayout {
  readonly partialDir: string;
  readonly filesDir: string;
}

interface ResumeState {
  readonly url: string;
  readonly validator: string;
}

export interface FetchResult {
  readonly size: number;
  /** Bytes already on disk when this attempt started (0: from scratch). */
  readonly resumedFrom: number;
  /** Bytes received from upstream by this attempt. */
  readonly received: number;
}

/** The downloaded bytes do not have the catalog's digest (or size): deleted, to be fetched again. */
export class DigestMismatchError extends PatchlineError {
  constructor(spec: NormalizedSpec, detail: string) {
    super(
      'CONTENT_DIGEST_MISMATCH',
      `The file downloaded from ${spec.url} does not match the catalog (${detail}); it was deleted and is never served.`,
      { context: { digest: spec.key, url: spec.url } },
    );
  }
}

export const partialPath = (layout: FetchLayout, key: string): string => join(layout.partialDir, key);
export const filePath = (layout: FetchLayout, key: string): string => join(layout.filesDir, key);

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function readResume(path: string): Promise<ResumeState | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ResumeState;
  } catch (error) {
    // Missing or half-written state (killed while writing it): start the file over.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return null;
    throw error;
  }
}

/** SHA-1 and SHA-256 of a file, hex. */
export async function hashFile(path: string): Promise<{ sha1: string; sha256: string; size: number }> {
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    sha1.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha1: sha1.digest('hex'), sha256: sha256.digest('hex'), size };
}

/** Deletes a partial download and its resume state. */
export async function discardPartial(layout: FetchLayout, key: string): Promise<void> {
  await rm(partialPath(layout, key), { force: true });
  await rm(`${partialPath(layout, key)}.json`, { force: true });
}

/**
 * One attempt: fetch (resuming when possible), verify, move into place.
 * Throws DigestMismatchError (file deleted), or CONTENT_UPSTREAM_FAILED (partial kept for the
 * next attempt), or the abort reason.
 */
export async function fetchVerified(
  spec: NormalizedSpec,
  layout: FetchLayout,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<FetchResult> {
  const part = partialPath(layout, spec.key);
  const statePath = `${part}.json`;
  const resume = await readResume(statePath);
  let have = (await sizeOf(part)) ?? 0;
  if (have > 0 && (!resume || resume.url !== spec.url || !resume.validator)) {
    await discardPartial(layout, spec.key);
    have = 0;
  }
  const headers: Record<string, string> = {};
  if (have > 0 && resume) {
    headers.range = `bytes=${have}-`;
    headers['if-range'] = resume.validator;
  }
  let response: Response;
  try {
    response = await fetch(spec.url, { headers, signal: options.signal ?? null, redirect: 'follow' });
  } catch (error) {
    options.signal?.throwIfAborted();
    throw new PatchlineError(
      'CONTENT_UPSTREAM_FAILED',
      `The payload ${spec.url} could not be downloaded: ${(error as Error).message}. The cache retries on the next request.`,
      { cause: error, context: { url: spec.url, digest: spec.key } },
    );
  }
  let append = false;
  if (response.status === 206 && have > 0) {
    const m = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
    append = m !== null && Number(m[1]) === have;
    if (!append) {
      await response.body?.cancel();
      await discardPartial(layout, spec.key);
      throw new PatchlineError(
        'CONTENT_UPSTREAM_FAILED',
        `The upstream answered ${spec.url} with a range that does not continue the partial download; it starts over on the next attempt.`,
        { context: { url: spec.url } },
      );
    }
  } else if (response.status === 416 && have > 0 && spec.size !== null && have === spec.size) {
    // All bytes were already there (killed between the last byte and the rename).
    await response.body?.cancel();
    append = true;
  } else if (response.status !== 200) {
    await response.body?.cancel();
    throw new PatchlineError(
      'CONTENT_UPSTREAM_FAILED',
      `The upstream answered ${response.status} for ${spec.url}. The cache retries on the next request.`,
      { context: { url: spec.url, status: response.status } },
    );
  }
  const resumedFrom = append ? have : 0;
  let received = 0;
  if (response.status !== 416) {
    const validator = response.headers.get('etag') ?? response.headers.get('last-modified') ?? '';
    // The resume state is written before the first byte, so a kill at any point can resume.
    await writeFile(statePath, JSON.stringify({ url: spec.url, validator } satisfies ResumeState));
    if (response.body) {
      // Bytes are reported after they were written, so "progress" means "on disk": a restart
      // resumes from at least what was reported.
      const file = await open(part, append ? 'a' : 'w');
      try {
        const sink = new Writable({
          write(chunk: Buffer, _enc, done) {
            file.write(chunk).then(() => {
              received += chunk.length;
              options.onBytes?.(chunk.length);
              done();
            }, done);
          },
        });
        await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), sink, {
          signal: options.signal,
        });
      } finally {
        await file.close();
      }
    }
  }
  const actual = await hashFile(part);
  const problems: string[] = [];
  if (spec.size !== null && actual.size !== spec.size) problems.push(`${actual.size} bytes, expected ${spec.size}`);
  if (spec.sha256 && actual.sha256 !== spec.sha256) problems.push(`SHA-256 ${actual.sha256}, expected ${spec.sha256}`);
  if (spec.sha1 && actual.sha1 !== spec.sha1) problems.push(`SHA-1 ${actual.sha1}, expected ${spec.sha1}`);
  if (problems.length > 0) {
    await discardPartial(layout, spec.key);
    throw new DigestMismatchError(spec, problems.join('; '));
  }
  await rename(part, filePath(layout, spec.key));
  await rm(statePath, { force: true });
  return { size: actual.size, resumedFrom, received };
}
