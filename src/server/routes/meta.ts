/**
 * The API describing itself: the OpenAPI document (built by @fastify/swagger from the routes'
 * own TypeBox schemas) and Prometheus metrics. Both need a credential: the document is for
 * script authors (viewer), metrics for monitoring (viewer; an API token for the scraper).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerDeps } from '../context.ts';
import { errors } from './schemas.ts';

export const metaRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.get(
    '/api/v1/openapi.json',
    {
      config: { access: 'viewer' },
      schema: { tags: ['meta'], summary: 'This OpenAPI document', response: errors({ 200: Type.Unknown() }) },
    },
    async () => app.swagger(),
  );
  app.get(
    '/metrics',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['meta'],
        summary: 'Prometheus metrics (text exposition format)',
        response: errors({ 200: Type.String() }),
      },
    },
    async (_request, reply) => {
      const text = await deps.metrics.registry.render();
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
    },
  );
};
