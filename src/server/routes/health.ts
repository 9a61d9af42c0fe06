/**
 * /healthz (the process answers) and /readyz (the store answers): unauthenticated for load
 * balancers and orchestrators, so they say nothing but ok / not ready — no versions, no counts.
 */
import { sql } from 'kysely';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerDeps } from '../context.ts';

const Status = Type.Object({ status: Type.String() });

export const healthRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: { tags: ['health'], summary: 'The process is alive', response: { 200: Status } },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: {
        tags: ['health'],
        summary: 'The store answers: ready to serve',
        response: { 200: Status, 503: Status },
      },
    },
    async (request, reply) => {
      try {
        await sql`select 1`.execute(deps.store.db);
        return { status: 'ready' };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check: the store does not answer');
        return reply.status(503).send({ status: 'not ready' });
      }
    },
  );
};
