/**
 * Serving a cached file, framework-agnostic: request method and headers in, status, headers and a
 * body stream out, so the server (Fastify) or a bare node:http handler can use it. What to answer
 * (ETag, immutable caching, conditional GET, one byte range) is decided by the pure plan in
 * src/domain/immutable-file.ts; this opens the bytes it names.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  IMMUTABLE_CACHE_CONTROL,
  parseRange,
  planImmutableFile,
  type FileRequest,
  type ImmutableFile,
} from '../domain/immutable-file.ts';

export { IMMUTABLE_CACHE_CONTROL, parseRange };

export interface ServableFile extends ImmutableFile {
  readonly path: string;
}

export type ServeRequest = FileRequest;

export interface ServeResult {
  readonly status: 200 | 206 | 304 | 404 | 405 | 416;
  readonly headers: Readonly<Record<string, string>>;
  /** Null for HEAD, 304, 404, 405 and 416. */
  readonly body: Readable | null;
  /** Bytes the body will carry. */
  readonly bytes: number;
}

/**
 * Answers a GET or HEAD for a cached file (null: not cached → 404).
 *
 * @example
 *   const r = serveContent(cache.lookup(digest), { method: req.method, headers: req.headers });
 *   res.writeHead(r.status, r.headers); r.body ? r.body.pipe(res) : res.end();
 */
export function serveContent(file: ServableFile | null, request: ServeRequest): ServeResult {
  const plan = planImmutableFile(file, request);
  if (!file || !plan.body) return { status: plan.status, headers: plan.headers, body: null, bytes: 0 };
  return {
    status: plan.status,
    headers: plan.headers,
    body: createReadStream(file.path, plan.body),
    bytes: plan.body.end - plan.body.start + 1,
  };
}
