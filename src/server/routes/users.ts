/** Users of the console and the API (admin only): list, create, change role/password/disable, delete. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listUsers } from '../../store/server/users-repo.ts';
import { changeUser, createUser, removeUser } from '../accounts.ts';
import { actorOfRequest } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { MAX_PASSWORD_CHARS } from '../auth/password.ts';
import { errors, IsoTime, RoleSchema } from './schemas.ts';

const User = Type.Object({
  name: Type.String(),
  role: RoleSchema,
  createdAt: IsoTime,
  createdBy: Type.String(),
  disabled: Type.Boolean(),
});
const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_CHARS, description: 'At least 8 characters' });
const NameParam = Type.Object({ name: Type.String({ maxLength: 64 }) });

export const userRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  const admin = { access: 'admin' as const };
  app.get(
    '/api/v1/users',
    {
      config: admin,
      schema: {
        tags: ['users'],
        summary: 'List users',
        response: errors({ 200: Type.Object({ users: Type.Array(User) }) }),
      },
    },
    async () => {
      const rows = await listUsers(deps.store.db);
      return {
        users: rows.map((u) => ({
          name: u.name,
          role: u.role as 'admin',
          createdAt: u.created_at,
          createdBy: u.created_by,
          disabled: u.disabled_at !== null,
        })),
      };
    },
  );

  app.post(
    '/api/v1/users',
    {
      config: admin,
      schema: {
        tags: ['users'],
        summary: 'Create a user',
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 64 }), role: RoleSchema, password: Password },
          { additionalProperties: false },
        ),
        response: errors({ 201: User }),
      },
    },
    async (request, reply) => reply.status(201).send(await createUser(deps, actorOfRequest(request), request.body)),
  );

  app.patch(
    '/api/v1/users/:name',
    {
      config: admin,
      schema: {
        tags: ['users'],
        summary: 'Change a user’s role or password, or disable it (ends its sessions)',
        params: NameParam,
        body: Type.Object(
          {
            role: Type.Optional(RoleSchema),
            password: Type.Optional(Password),
            disabled: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: errors({ 200: User }),
      },
    },
    async (request) => changeUser(deps, actorOfRequest(request), request.params.name, request.body),
  );

  app.delete(
    '/api/v1/users/:name',
    {
      config: admin,
      schema: { tags: ['users'], summary: 'Delete a user', params: NameParam, response: errors({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      await removeUser(deps, actorOfRequest(request), request.params.name);
      return reply.status(204).send(null);
    },
  );
};
