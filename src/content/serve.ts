/**
 * Serving a cached file, framework-agnostic: request method and headers in, status, headers and a
 * body stream out, so the server (Fastify) or a bare node:http handler can use it. Files are named
 * by digest and never change, so they go out with a strong ETag (the digest), `Cache-Control:
 * immutable` for a year (RFC 8246) and single byte ranges: any HTTP cache in a branch office can
 * act as a distribution point, and an agent can resume a broken download.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export interface ServableFile {
  readonly path: string;
  readonly size: number;
  /** Hex digest the file is named by (its ETag). */
  readonly key: string;
  /** Default application/octet-stream. */
  readonly contentType?: string;
}

export interface ServeRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface ServeResult {
  readonly status: 200 | 206 | 304 | 404 | 405 | 416;
  readonly headers: Readonly<Record<string, string>>;
  /** Null for HEAD, 304, 404, 405 and 416. */
  readonly body: Readable | null;
  /** Bytes the body will carry. */
  readonly bytes: number;
}

const header = (h: ServeRequest['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Parses one `bytes=` range against a size. Several ranges are served whole (null), as RFC 9110 allows. Pure. */
export function parseRange(
  value: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (!value) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/**
 * Answers a GET or HEAD for a cached file (null: not cached → 404).
 *
 * @example
 *   const r = serveContent(cache.lookup(digest), { method: req.method, headers: req.headers });
 *   res.writeHead(r.status, r.headers); r.body ? r.body.pipe(res) : res.end();
 */
export function serveContent(file: ServableFile | null, request: ServeRequest): ServeResult {
  if (request.method !== 'GET' && request.method !== 'HEAD')
    return { status: 405, headers: { allow: 'GET, HEAD' }, body: null, bytes: 0 };
  if (!file) return { status: 404, headers: { 'cache-control': 'no-store' }, body: null, bytes: 0 };
  const etag = `"${file.key}"`;
  const common = {
    etag,
    'cache-control': IMMUTABLE_CACHE_CONTROL,
    'accept-ranges': 'bytes',
    'content-type': file.contentType ?? 'application/octet-stream',
  };
  const inm = header(request.headers, 'if-none-match');
  if (
    inm !== undefined &&
    inm.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*')
  )
    return { status: 304, headers: common, body: null, bytes: 0 };
  // If-Range with another validator: the client's partial copy is of something else, send it whole.
  const ifRange = header(request.headers, 'if-range');
  const range =
    ifRange !== undefined && ifRange !== etag ? null : parseRange(header(request.headers, 'range'), file.size);
  if (range === 'unsatisfiable')
    return { status: 416, headers: { ...common, 'content-range': `bytes */${file.size}` }, body: null, bytes: 0 };
  const head = request.method === 'HEAD';
  if (range === null) {
    return {
      status: 200,
      headers: { ...common, 'content-length': String(file.size) },
      body: head ? null : createReadStream(file.path),
      bytes: head ? 0 : file.size,
    };
  }
  const length = range.end - range.start + 1;
  return {
    status: 206,
    headers: {
      ...common,
      'content-length': String(length),
      'content-range': `bytes ${range.start}-${range.end}/${file.size}`,
    },
    body: head ? null : createReadStream(file.path, { start: range.start, end: range.end }),
    bytes: head ? 0 : length,
  };
}
