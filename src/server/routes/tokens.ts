/**
 * API tokens (admin only): create (the token is in this answer only), list (never the secret),
 * revoke. Enrollment tokens for agents likewise, under /api/v1/enroll-tokens.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listApiTokens, listEnrollTokens } from '../../store/server/credentials-repo.ts';
import {
  createApiToken,
  createEnrollToken,
  MAX_ENROLL_TOKEN_HOURS,
  revokeEnrollTokenById,
  revokeToken,
} from '../accounts.ts';
import { actorOfRequest } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { errors, IsoTime, Nullable, RoleSchema } from './schemas.ts';

const Token = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  createdAt: IsoTime,
  createdBy: Type.String(),
  expiresAt: Nullable(IsoTime),
  lastUsedAt: Nullable(IsoTime),
  revokedAt: Nullable(IsoTime),
});
const NewToken = Type.Composite([
  Token,
  Type.Object({ token: Type.String({ description: 'Shown once: send it as "Authorization: Bearer <token>"' }) }),
]);
const EnrollToken = Type.Object({
  id: Type.String(),
  ring: Type.String(),
  singleUse: Type.Boolean(),
  uses: Type.Integer(),
  createdAt: IsoTime,
  createdBy: Type.String(),
  expiresAt: IsoTime,
  lastUsedAt: Nullable(IsoTime),
  revokedAt: Nullable(IsoTime),
});
const NewEnrollToken = Type.Composite([
  EnrollToken,
  Type.Object({ token: Type.String({ description: 'Shown once: `patchline agent enroll --token <token>`' }) }),
]);
const IdParam = Type.Object({ id: Type.String({ maxLength: 128 }) });

export const tokenRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  const admin = { access: 'admin' as const };
  app.get(
    '/api/v1/tokens',
    {
      config: admin,
      schema: {
        tags: ['tokens'],
        summary: 'List API tokens (never their secrets)',
        response: errors({ 200: Type.Object({ tokens: Type.Array(Token) }) }),
      },
    },
    async () => ({
      tokens: (await listApiTokens(deps.store.db)).map((t) => ({
        id: t.id,
        name: t.name,
        role: t.role as 'admin',
        createdAt: t.created_at,
        createdBy: t.created_by,
        expiresAt: t.expires_at,
        lastUsedAt: t.last_used_at,
        revokedAt: t.revoked_at,
      })),
    }),
  );
  app.post(
    '/api/v1/tokens',
    {
      config: admin,
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token (shown once)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            role: RoleSchema,
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          },
          { additionalProperties: false },
        ),
        response: errors({ 201: NewToken }),
      },
    },
    async (request, reply) => reply.status(201).send(await createApiToken(deps, actorOfRequest(request), request.body)),
  );
  app.delete(
    '/api/v1/tokens/:id',
    {
      config: admin,
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an API token (at once)',
        params: IdParam,
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await revokeToken(deps, actorOfRequest(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/enroll-tokens',
    {
      config: admin,
      schema: {
        tags: ['enrollment'],
        summary: 'List enrollment tokens',
        response: errors({ 200: Type.Object({ enrollTokens: Type.Array(EnrollToken) }) }),
      },
    },
    async () => ({
      enrollTokens: (await listEnrollTokens(deps.store.db)).map((t) => ({
        id: t.id,
        ring: t.ring,
        singleUse: t.single_use === 1,
        uses: t.uses,
        createdAt: t.created_at,
        createdBy: t.created_by,
        expiresAt: t.expires_at,
        lastUsedAt: t.last_used_at,
        revokedAt: t.revoked_at,
      })),
    }),
  );
  app.post(
    '/api/v1/enroll-tokens',
    {
      config: admin,
      schema: {
        tags: ['enrollment'],
        summary: 'Create an enrollment token bound to a ring (shown once; carries the server certificate fingerprint)',
        body: Type.Object(
          {
            ring: Type.String({ minLength: 1, maxLength: 63 }),
            expiresInHours: Type.Integer({ minimum: 1, maximum: MAX_ENROLL_TOKEN_HOURS }),
            singleUse: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: errors({ 201: NewEnrollToken }),
      },
    },
    async (request, reply) =>
      reply.status(201).send(
        await createEnrollToken(deps, actorOfRequest(request), {
          ring: request.body.ring,
          expiresInHours: request.body.expiresInHours,
          singleUse: request.body.singleUse ?? false,
          fingerprint: deps.tlsFingerprint,
        }),
      ),
  );
  app.delete(
    '/api/v1/enroll-tokens/:id',
    {
      config: admin,
      schema: {
        tags: ['enrollment'],
        summary: 'Revoke an enrollment token',
        params: IdParam,
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await revokeEnrollTokenById(deps, actorOfRequest(request), request.params.id);
      return reply.status(204).send(null);
    },
  );
};
