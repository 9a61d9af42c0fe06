/**
 * The lab's fake Microsoft download server for the offline catalog: serves a cab at Microsoft's
 * path with Last-Modified, ETag, HEAD, conditional GET and Range — and can misbehave on purpose:
 * drop the connection partway through the body (to test resume), serve a tampered copy (to test
 * signature checks), or ignore conditional headers (as Microsoft's CDN sometimes does).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const CATALOG_PATH = '/microsoftupdate/v6/wsusscan/wsusscn2.cab';

export interface CatalogUpstreamOptions {
  /** The cab to serve. Its mtime is the Last-Modified; its content digest the ETag. */
  file: string;
  /** Destroy the socket after sending this fraction (0–1) of a full body; applies to the next `dropTimes` GETs. */
  dropAtFraction?: number;
  dropTimes?: number;
  /** Serve the file with one byte flipped at this offset (a tampered copy). */
  tamperAtOffset?: number;
  /** Answer 200 with the whole body even when the conditional headers say "unchanged". */
  ignoreConditionals?: boolean;
  /** Refuse HEAD with 405 (some CDNs do). */
  refuseHead?: boolean;
}

export interface UpstreamStats {
  requests: { method: string; range: string | null; status: number; bodyBytes: number }[];
  /** Body bytes written, over all responses. */
  bodyBytes: number;
}

export interface CatalogUpstream {
  readonly url: string;
  readonly stats: UpstreamStats;
  readonly options: CatalogUpstreamOptions;
  close(): Promise<void>;
}

async function describe(file: string): Promise<{ size: number; lastModified: string; etag: string }> {
  const s = await stat(file);
  const digest = createHash('sha256')
    .update(await readFile(file))
    .digest('hex')
    .slice(0, 32);
  return { size: s.size, lastModified: s.mtime.toUTCString(), etag: `"${digest}"` };
}

/** Starts the upstream on 127.0.0.1 with a random port. `options` may be changed while it runs. */
export async function startCatalogUpstream(options: CatalogUpstreamOptions): Promise<CatalogUpstream> {
  const stats: UpstreamStats = { requests: [], bodyBytes: 0 };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const entry = { method: req.method ?? '', range: req.headers.range ?? null, status: 0, bodyBytes: 0 };
    const record = (status: number) => {
      entry.status = status;
      stats.requests.push(entry);
    };
    if (req.url?.split('?')[0] !== CATALOG_PATH) {
      record(404);
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'HEAD' && options.refuseHead) {
      record(405);
      res.writeHead(405).end();
      return;
    }
    const { size, lastModified, etag } = await describe(options.file);
    const base = {
      'last-modified': lastModified,
      etag,
      'accept-ranges': 'bytes',
      'content-type': 'application/vnd.ms-cab-compressed',
    };

    if (!options.ignoreConditionals && req.method === 'GET') {
      const inm = req.headers['if-none-match'];
      const ims = req.headers['if-modified-since'];
      if ((inm !== undefined && inm === etag) || (inm === undefined && ims !== undefined && ims === lastModified)) {
        record(304);
        res.writeHead(304, base).end();
        return;
      }
    }
    if (req.method === 'HEAD') {
      record(200);
      res.writeHead(200, { ...base, 'content-length': size }).end();
      return;
    }

    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && (ifRange === undefined || ifRange === etag || ifRange === lastModified)) {
      start = Number(range[1]);
      if (start >= size) {
        record(416);
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    record(status);
    const headers: Record<string, string | number> = { ...base, 'content-length': size - start };
    if (status === 206) headers['content-range'] = `bytes ${start}-${size - 1}/${size}`;
    res.writeHead(status, headers);

    const dropAt =
      options.dropAtFraction !== undefined && (options.dropTimes ?? 1) > 0
        ? Math.floor(size * options.dropAtFraction)
        : null;
    if (dropAt !== null) options.dropTimes = (options.dropTimes ?? 1) - 1;
    let position = start;
    const stream = createReadStream(options.file, { start });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let piece = chunk;
      if (
        options.tamperAtOffset !== undefined &&
        options.tamperAtOffset >= position &&
        options.tamperAtOffset < position + piece.length
      ) {
        piece = Buffer.from(piece);
        const i = options.tamperAtOffset - position;
        piece[i] = piece[i]! ^ 0xff;
      }
      if (dropAt !== null && position + piece.length > dropAt) {
        const head = piece.subarray(0, Math.max(0, dropAt - position));
        stats.bodyBytes += head.length;
        entry.bodyBytes += head.length;
        await new Promise<void>((resolve) => res.write(head, () => resolve()));
        stream.destroy();
        res.socket?.destroy();
        return;
      }
      position += piece.length;
      stats.bodyBytes += piece.length;
      entry.bodyBytes += piece.length;
      if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${CATALOG_PATH}`,
    stats,
    options,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
