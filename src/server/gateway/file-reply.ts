/**
 * Serves an immutable, digest-named file (the catalog cab, a cached payload) through Fastify with
 * the content cache's rules (src/content/serve.ts): a strong ETag (its digest), `Cache-Control:
 * immutable`, conditional GET and a single byte Range — what an agent needs to resume a broken
 * download, and what lets any HTTP cache in a branch office serve it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { serveContent } from '../../content/serve.ts';

export interface ServedFile {
  readonly path: string;
  readonly size: number;
  /** Hex digest the file is named by. */
  readonly digest: string;
  readonly contentType?: string;
}

export function sendImmutableFile(request: FastifyRequest, reply: FastifyReply, file: ServedFile): FastifyReply {
  const served = serveContent(
    {
      path: file.path,
      size: file.size,
      key: file.digest,
      ...(file.contentType ? { contentType: file.contentType } : {}),
    },
    { method: request.method, headers: request.headers },
  );
  reply.code(served.status).headers(served.headers);
  return served.body ? reply.send(served.body) : reply.send();
}
