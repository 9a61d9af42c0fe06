/**
 * Serves an immutable, digest-named file (the catalog cab, a cached payload) with a strong ETag
 * (its digest), `Cache-Control: immutable`, conditional GET and a single byte Range — what an agent
 * needs to resume a broken download, and what lets any HTTP cache in a branch office serve it.
 */
import { createReadStream } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Immutable content may be cached for a year (RFC 8246). */
const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export interface ServedFile {
  readonly path: string;
  readonly size: number;
  /** Hex digest the file is named by. */
  readonly digest: string;
  readonly contentType?: string;
}

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range). null: no usable header, serve it whole. */
export function parseByteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
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

export function sendImmutableFile(request: FastifyRequest, reply: FastifyReply, file: ServedFile): FastifyReply {
  const etag = `"${file.digest}"`;
  reply
    .header('etag', etag)
    .header('cache-control', IMMUTABLE_CACHE_CONTROL)
    .header('accept-ranges', 'bytes')
    .header('content-type', file.contentType ?? 'application/octet-stream');
  const inm = request.headers['if-none-match'];
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*'))
    return reply.code(304).send();
  // If-Range with another validator: the client's partial copy is of something else, send it whole.
  const ifRange = request.headers['if-range'];
  const range = ifRange !== undefined && ifRange !== etag ? null : parseByteRange(request.headers.range, file.size);
  if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${file.size}`).send();
  if (range === null) {
    reply.header('content-length', String(file.size));
    return request.method === 'HEAD' ? reply.send() : reply.send(createReadStream(file.path));
  }
  reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${file.size}`)
    .header('content-length', String(range.end - range.start + 1));
  return request.method === 'HEAD'
    ? reply.send()
    : reply.send(createReadStream(file.path, { start: range.start, end: range.end }));
}
