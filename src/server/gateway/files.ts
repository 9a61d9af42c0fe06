/**
 * The agent gateway's file routes: the current catalog cab (by digest, Range, ETag, immutable) and
 * the content cache's payload files (need-driven: only what the host may install is fetched).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CatalogInfo, ErrorBody } from '../../domain/agent-protocol.ts';
import { GatewayError } from './errors.ts';
import { sendImmutableFile } from './file-reply.ts';
import type { GatewayDeps } from './gateway.ts';

const UpdateContentResponse = Type.Object({
  files: Type.Array(
    Type.Object({
      digest: Type.String(),
      sha1: Type.Union([Type.String(), Type.Null()]),
      sha256: Type.Union([Type.String(), Type.Null()]),
      size: Type.Union([Type.Integer(), Type.Null()]),
      fileName: Type.Union([Type.String(), Type.Null()]),
      url: Type.String(),
    }),
  ),
});

export function registerFileRoutes(
  instance: FastifyInstance,
  { deps, errors }: { readonly deps: GatewayDeps; readonly errors: Record<number, typeof ErrorBody> },
): void {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/v1/agent/catalog',
    {
      schema: { tags: ['agent'], summary: 'The current catalog cab', response: { 200: CatalogInfo, ...errors } },
    },
    async () => {
      const catalog = await deps.catalog();
      if (!catalog)
        throw new GatewayError(
          404,
          'AGENT_CATALOG_NONE',
          'the server has no catalog yet: it syncs on its schedule, or run `patchline catalog sync`',
        );
      return { sha256: catalog.sha256, size: catalog.size, url: `/api/v1/agent/catalog/${catalog.sha256}.cab` };
    },
  );

  app.get(
    '/api/v1/agent/catalog/:file',
    {
      schema: {
        tags: ['agent'],
        summary: 'Download the catalog cab by digest (Range, ETag)',
        params: Type.Object({ file: Type.String({ pattern: '^[0-9a-f]{64}\\.cab$' }) }),
      },
    },
    async (request, reply) => {
      const catalog = await deps.catalog();
      if (!catalog || `${catalog.sha256}.cab` !== request.params.file) {
        throw new GatewayError(
          404,
          'AGENT_CATALOG_GONE',
          'that catalog is no longer current: ask /api/v1/agent/catalog for the current one',
        );
      }
      return sendImmutableFile(request, reply, {
        path: catalog.path,
        size: catalog.size,
        digest: catalog.sha256,
        contentType: 'application/vnd.ms-cab-compressed',
      });
    },
  );

  app.get(
    '/api/v1/agent/updates/:updateId/content',
    {
      schema: {
        tags: ['agent'],
        summary: "The payload files of an update this host needs and may install, from the server's content cache",
        params: Type.Object({ updateId: Type.String({ pattern: '^[0-9a-fA-F-]{36}$' }) }),
        response: { 200: UpdateContentResponse, 503: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      const host = request.agentHost!;
      const updateId = request.params.updateId.toLowerCase();
      // Need-driven: only what the policy allows this host (it needs it and may install it) is fetched.
      const policy = await deps.policyFor(host);
      if (!policy.allowedUpdateIds.some((id) => id.toLowerCase() === updateId)) {
        throw new GatewayError(
          403,
          'AGENT_CONTENT_NOT_ALLOWED',
          `update ${updateId} is not allowed on ${host.name} (or not needed): the server fetches only what a host may install`,
        );
      }
      const files = deps.updateContent ? await deps.updateContent(updateId) : null;
      if (files === 'pending') {
        return reply
          .code(503)
          .header('retry-after', '10')
          .send({
            error: {
              code: 'AGENT_CONTENT_DOWNLOADING',
              message: `the server is still downloading the files of ${updateId}: retry shortly`,
            },
          });
      }
      if (files === null)
        throw new GatewayError(
          404,
          'AGENT_CONTENT_NONE',
          `the server has no cached files for ${updateId} (no content cache, or the catalog lists none): download from upstream`,
        );
      return { files: files.map((f) => ({ ...f, url: `/api/v1/agent/content/${f.digest}` })) };
    },
  );

  app.get(
    '/api/v1/agent/content/:digest',
    {
      schema: {
        tags: ['agent'],
        summary: 'Download a cached payload file by digest (Range, ETag)',
        params: Type.Object({ digest: Type.String({ pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' }) }),
      },
    },
    async (request, reply) => {
      const file = await deps.content(request.params.digest);
      if (!file)
        throw new GatewayError(
          404,
          'AGENT_CONTENT_NOT_CACHED',
          `payload ${request.params.digest} is not in the server's cache (yet): retry later`,
        );
      const sent = sendImmutableFile(request, reply, {
        path: file.path,
        size: file.size,
        digest: request.params.digest,
      });
      if (request.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 206))
        deps.onContentServed?.(Number(reply.getHeader('content-length') ?? 0));
      return sent;
    },
  );
}
