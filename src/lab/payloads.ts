/**
 * The lab's fake upstream: deterministic payload bytes for every catalog update, their digests,
 * Microsoft-shaped URLs, and an HTTP handler (Content-Length, ETag, Range) the daemon mounts.
 *
 * Bytes are an AES-256-CTR keystream keyed by the UpdateID, so any byte range can be produced
 * without storing anything, and the same scenario always serves the same bytes. Sizes are
 * sizeMB × payloadScale (at least PAYLOAD_MIN_BYTES) so a 500-host lab does not move gigabytes.
 * URLs carry the SHA-1 of the file in its name, as Microsoft's do
 * (`/d/msdownload/update/software/secu/2026/11/windows10.0-kb5044444-x64_<sha1>.msu`).
 */
import { createCipheriv, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { CatalogEntry, Scenario } from './scenario.ts';

export const PAYLOAD_MIN_BYTES = 4 * 1024;
const MIB = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const AES_BLOCK_BYTES = 16;

export interface PayloadInfo {
  readonly entry: CatalogEntry;
  readonly size: number;
  /** Hex, lower case: what the downloader checks. */
  readonly sha256: string;
  /** Hex, lower case: the one in the file name, as in Microsoft's URLs. */
  readonly sha1: string;
  /** URL path on the upstream, starting with "/". */
  readonly path: string;
}

/** Payload size in bytes for an update. Pure. */
export function payloadSize(entry: Pick<CatalogEntry, 'sizeMB'>, payloadScale: number): number {
  return Math.max(PAYLOAD_MIN_BYTES, Math.round(entry.sizeMB * MIB * payloadScale));
}

/** The URL path Microsoft would use for this update's file. Pure. */
export function payloadPath(entry: CatalogEntry, sha1: string): string {
  const released = new Date(entry.released);
  const yyyy = String(released.getUTCFullYear());
  const mm = String(released.getUTCMonth() + 1).padStart(2, '0');
  if (entry.type === 'driver')
    return `/c/msdownload/update/driver/drvs/${yyyy}/${mm}/${entry.key.toLowerCase()}_${sha1}.cab`;
  const area = entry.classification === 'Security Updates' ? 'secu' : 'updt';
  const isDefinition = /definition/i.test(entry.classification);
  const base = entry.kb ? `windows10.0-kb${entry.kb}-x64` : `${entry.key.toLowerCase()}-x64`;
  return `/d/msdownload/update/software/${area}/${yyyy}/${mm}/${base}_${sha1}.${isDefinition ? 'exe' : 'msu'}`;
}

function keyOf(entry: CatalogEntry): Buffer {
  return createHash('sha256').update(`patchline-lab-payload\0${entry.updateId}\0${entry.revisionNumber}`).digest();
}

function counterIv(block: number): Buffer {
  const iv = Buffer.alloc(AES_BLOCK_BYTES);
  iv.writeBigUInt64BE(BigInt(block), 8);
  return iv;
}

/** Yields the bytes [start, end) of an update's payload in chunks. */
function* payloadChunks(key: Buffer, start: number, end: number): Generator<Buffer> {
  const firstBlock = Math.floor(start / AES_BLOCK_BYTES);
  const cipher = createCipheriv('aes-256-ctr', key, counterIv(firstBlock));
  let skip = start - firstBlock * AES_BLOCK_BYTES;
  let position = firstBlock * AES_BLOCK_BYTES;
  const zeros = Buffer.alloc(CHUNK_BYTES);
  while (position < end) {
    const n = Math.min(CHUNK_BYTES, end - position);
    const out = cipher.update(zeros.subarray(0, n));
    position += n;
    const chunk = skip > 0 ? out.subarray(skip) : out;
    skip = 0;
    if (chunk.length > 0) yield chunk;
  }
}

export interface PayloadStore {
  /** Size, digests and URL path of an update's payload (computed once, then remembered). */
  info(entry: CatalogEntry): PayloadInfo;
  /** The absolute URL on an upstream base such as http://127.0.0.1:8080. */
  urlFor(entry: CatalogEntry, upstreamUrl: string): string;
  /** The payload bytes [start, end] (inclusive, like HTTP ranges). */
  stream(entry: CatalogEntry, start?: number, endInclusive?: number): Readable;
  /** Serves GET/HEAD for payload paths; returns false (and does nothing) for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * One store per scenario; share it between the hosts of an in-process lab.
 *
 * @example
 *   const payloads = createPayloadStore(scenario);
 *   http.createServer((req, res) => { if (!payloads.handle(req, res)) { res.statusCode = 404; res.end(); } });
 */
export function createPayloadStore(scenario: Scenario): PayloadStore {
  const infos = new Map<string, PayloadInfo>();
  let byPath: Map<string, PayloadInfo> | null = null;

  const info = (entry: CatalogEntry): PayloadInfo => {
    const known = infos.get(entry.updateId);
    if (known) return known;
    const size = payloadSize(entry, scenario.payloadScale);
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    for (const chunk of payloadChunks(keyOf(entry), 0, size)) {
      sha1.update(chunk);
      sha256.update(chunk);
    }
    const sha1Hex = sha1.digest('hex');
    const result: PayloadInfo = Object.freeze({
      entry,
      size,
      sha256: sha256.digest('hex'),
      sha1: sha1Hex,
      path: payloadPath(entry, sha1Hex),
    });
    infos.set(entry.updateId, result);
    return result;
  };

  const lookup = (path: string): PayloadInfo | undefined => {
    byPath ??= new Map(scenario.catalog.map((e) => [info(e).path, info(e)]));
    // The upstream may be mounted under a prefix (http://127.0.0.1:8080/upstream/d/msdownload/…).
    const at = path.search(/\/[cd]\/msdownload\//);
    return byPath.get(at > 0 ? path.slice(at) : path);
  };

  const stream = (entry: CatalogEntry, start = 0, endInclusive?: number): Readable => {
    const size = info(entry).size;
    const end = Math.min(size, (endInclusive ?? size - 1) + 1);
    return Readable.from(payloadChunks(keyOf(entry), start, end), { objectMode: false });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://upstream').pathname);
    const payload = lookup(path);
    if (!payload) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    const etag = `"${payload.sha256}"`;
    const common = {
      etag,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'cache-control': 'public, max-age=31536000, immutable',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, common).end();
      return true;
    }
    const ifRange = req.headers['if-range'];
    const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, payload.size) : null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...common, 'content-range': `bytes */${payload.size}` }).end();
      return true;
    }
    const [start, end] = range ?? [0, payload.size - 1];
    const headers = {
      ...common,
      'content-length': String(end - start + 1),
      ...(range ? { 'content-range': `bytes ${start}-${end}/${payload.size}` } : {}),
    };
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    const body = stream(payload.entry, start, end);
    body.on('error', (error) => res.destroy(error));
    body.pipe(res);
    return true;
  };

  return {
    info,
    urlFor: (entry, upstreamUrl) => `${upstreamUrl.replace(/\/+$/, '')}${info(entry).path}`,
    stream,
    handle,
  };
}

/**
 * Parses a single `bytes=` range against a size. Multiple ranges are served whole (null), as
 * RFC 9110 allows. Pure.
 */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return [start, end];
}
