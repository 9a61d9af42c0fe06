/**
 * How a digest-named, never-changing file is answered over HTTP, decided without touching the
 * file: a strong ETag (the digest), `Cache-Control: immutable` for a year (RFC 8246), conditional
 * GET and a single byte range — so any HTTP cache in a branch office can act as a distribution
 * point, and an agent can resume a broken download. The content cache (src/content/serve.ts) and
 * the agent gateway (src/server/gateway/file-reply.ts) both answer with this plan and open the
 * bytes it names.
 */

export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export interface ImmutableFile {
  readonly size: number;
  /** Hex digest the file is named by (its ETag). */
  readonly key: string;
  /** Default application/octet-stream. */
  readonly contentType?: string;
}

export interface FileRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface FilePlan {
  readonly status: 200 | 206 | 304 | 404 | 405 | 416;
  readonly headers: Readonly<Record<string, string>>;
  /** The bytes to send (inclusive), or null for none (HEAD, 304, 404, 405, 416). */
  readonly body: { readonly start: number; readonly end: number } | null;
}

const header = (h: FileRequest['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Parses one `bytes=` range against a size. Several ranges are served whole (null), as RFC 9110 allows. */
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

/** The answer to a GET or HEAD for `file` (null: not there → 404). */
export function planImmutableFile(file: ImmutableFile | null, request: FileRequest): FilePlan {
  if (request.method !== 'GET' && request.method !== 'HEAD')
    return { status: 405, headers: { allow: 'GET, HEAD' }, body: null };
  if (!file) return { status: 404, headers: { 'cache-control': 'no-store' }, body: null };
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
    return { status: 304, headers: common, body: null };
  // If-Range with another validator: the client's partial copy is of something else, send it whole.
  const ifRange = header(request.headers, 'if-range');
  const range =
    ifRange !== undefined && ifRange !== etag ? null : parseRange(header(request.headers, 'range'), file.size);
  if (range === 'unsatisfiable')
    return { status: 416, headers: { ...common, 'content-range': `bytes */${file.size}` }, body: null };
  const head = request.method === 'HEAD';
  if (range === null) {
    return {
      status: 200,
      headers: { ...common, 'content-length': String(file.size) },
      body: head || file.size === 0 ? null : { start: 0, end: file.size - 1 },
    };
  }
  return {
    status: 206,
    headers: {
      ...common,
      'content-length': String(range.end - range.start + 1),
      'content-range': `bytes ${range.start}-${range.end}/${file.size}`,
    },
    body: head ? null : range,
  };
}
