/** GET /api/v1/audit: every change (who, when, what, from where), newest first, paged by id (admin). */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listAudit } from '../../store/server/audit-repo.ts';
import type { ServerDeps } from '../context.ts';
import { errors, IsoTime, MAX_PAGE, Nullable } from './schemas.ts';

const Entry = Type.Object({
  id: Type.Integer(),
  at: IsoTime,
  actor: Type.String({ description: 'user:NAME, token:NAME, agent:HOST or cli:OSUSER' }),
  action: Type.String(),
  target: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
  ip: Nullable(Type.String()),
});

export const auditRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.get(
    '/api/v1/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'The audit log, newest first; page with ?before=<id of the last entry seen>',
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
            before: Type.Optional(Type.Integer({ minimum: 1 })),
            actor: Type.Optional(Type.String({ maxLength: 160 })),
            action: Type.Optional(
              Type.String({ maxLength: 64, description: 'exact action, or a prefix ending in "." (rule.)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: errors({ 200: Type.Object({ entries: Type.Array(Entry) }) }),
      },
    },
    async (request) => ({
      entries: await listAudit(deps.store.db, {
        limit: request.query.limit ?? 100,
        before: request.query.before,
        actor: request.query.actor,
        action: request.query.action,
      }),
    }),
  );
};
