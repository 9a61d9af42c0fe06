/**
 * Serves an immutable, digest-named file (the catalog cab, a cached payload) through Fastify by the
 * plan of src/domain/immutable-file.ts: a strong ETag (its digest), `Cache-Control: immutable`,
 * conditional GET and a single byte Range — what an agent needs to resume a broken download, and
 * what lets any HTTP cache in a branch office serve it.
 */
import { createReadStream } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { planImmutableFile } from '../../domain/immutable-file.ts';

export interface ServedFile {
  readonly path: string;
  readonly size: number;
  /** Hex digest the file is named by. */
  readonly digest: string;
  readonly contentType?: string;
}

export function sendImmutableFile(request: FastifyRequest, reply: FastifyReply, file: ServedFile): FastifyReply {
  const plan = planImmutableFile(
    { size: file.size, key: file.digest, ...(file.contentType ? { contentType: file.contentType } : {}) },
    { method: request.method, headers: request.headers },
  );
  reply.code(plan.status).headers(plan.headers);
  return plan.body ? reply.send(createReadStream(file.path, plan.body)) : reply.send();
}
