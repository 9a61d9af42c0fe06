/**
 * Actions an operator triggers (scan, download, install, reboot now) on hosts or a whole ring.
 * The action and one row per host are stored before the 202, then the hosts' held check-ins are
 * woken so connected agents receive it at once; progress comes back through the agent gateway and
 * is visible here and on /api/v1/events. An action runs now, whatever the maintenance window.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ACTION_KINDS } from '../../domain/agent-protocol.ts';
import {
  actionHostRows,
  findAction,
  hostKey,
  insertAction,
  listActions,
  listHostRows,
} from '../../store/server/fleet-repo.ts';
import { ringOfHost } from '../../domain/policy/index.ts';
import { actorOfRequest, commitChange } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { badRequest, notFound } from '../errors.ts';
import { newId } from '../auth/secrets.ts';
import { loadRings } from '../fleet/policy-view.ts';
import { errors, IsoTime, MAX_PAGE, Nullable } from './schemas.ts';

const Kind = Type.Union(ACTION_KINDS.map((k) => Type.Literal(k)));
const Guid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const ActionSummary = Type.Object({
  id: Type.String(),
  action: Kind,
  state: Type.String({ description: 'pending | running | done | failed' }),
  createdAt: IsoTime,
  createdBy: Type.String(),
  finishedAt: Nullable(IsoTime),
  target: Type.Object({ hosts: Type.Optional(Type.Array(Type.String())), ring: Type.Optional(Type.String()) }),
  updateIds: Nullable(Type.Array(Type.String())),
});
const ActionHost = Type.Object({
  host: Type.String(),
  state: Type.String({ description: 'queued | received | running | succeeded | failed' }),
  phase: Nullable(Type.String()),
  percent: Nullable(Type.Number()),
  hresult: Nullable(Type.String()),
  message: Nullable(Type.String()),
  updatedAt: IsoTime,
});
const ActionDetail = Type.Composite([
  ActionSummary,
  Type.Object({ hosts: Type.Array(ActionHost), counts: Type.Record(Type.String(), Type.Integer()) }),
]);

const summary = (a: {
  id: string;
  kind: string;
  state: string;
  created_at: string;
  created_by: string;
  finished_at: string | null;
  target_json: string;
  update_ids_json: string | null;
}) => ({
  id: a.id,
  action: a.kind as 'scan',
  state: a.state,
  createdAt: a.created_at,
  createdBy: a.created_by,
  finishedAt: a.finished_at,
  target: JSON.parse(a.target_json) as { hosts?: string[]; ring?: string },
  updateIds: a.update_ids_json ? (JSON.parse(a.update_ids_json) as string[]) : null,
});

export const actionRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.post(
    '/api/v1/actions',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['actions'],
        summary: 'Scan, download, install or reboot now on hosts or a ring (answers 202 once stored)',
        body: Type.Object(
          {
            action: Kind,
            hosts: Type.Optional(
              Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 10_000 }),
            ),
            ring: Type.Optional(Type.String({ maxLength: 64 })),
            updateIds: Type.Optional(Type.Array(Guid, { minItems: 1, maxItems: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: errors({ 202: Type.Object({ id: Type.String(), hosts: Type.Integer() }) }),
      },
    },
    async (request, reply) => {
      const { action, hosts, ring, updateIds } = request.body;
      if ((hosts === undefined) === (ring === undefined))
        throw badRequest('ACTION_TARGET_INVALID', 'Name either "hosts" or "ring" (one of them).');
      // Hosts and rings only: the whole fleet's decisions are not needed to address an action, and
      // computing them first (every host × update) was most of an action's latency at scale.
      const [hostRows, rings] = await Promise.all([listHostRows(deps.store.db), loadRings(deps.store.db)]);
      const live = hostRows.filter((h) => !h.revoked_at);
      let targets;
      if (hosts) {
        const byKey = new Map(live.map((h) => [h.key, h]));
        const unknown = hosts.filter((h) => !byKey.has(hostKey(h)));
        if (unknown.length)
          throw badRequest(
            'ACTION_UNKNOWN_HOST',
            `Not enrolled (or revoked): ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ` and ${unknown.length - 20} more` : ''}.`,
          );
        targets = [...new Set(hosts.map(hostKey))].map((k) => byKey.get(k)!);
      } else {
        if (!rings.some((r) => r.name === ring)) throw notFound('RING_NOT_FOUND', `No ring ${ring}.`);
        targets = live.filter((h) => ringOfHost({ name: h.name, ring: h.ring }, rings)?.name === ring);
        if (targets.length === 0) throw badRequest('ACTION_NO_HOSTS', `Ring ${ring} has no enrolled host.`);
      }
      const id = `a-${newId(8)}`;
      const at = deps.now().toISOString();
      const who = actorOfRequest(request);
      await commitChange(deps, who, async (trx, record) => {
        await insertAction(
          trx,
          {
            id,
            kind: action,
            target_json: JSON.stringify(hosts ? { hosts: targets.map((h) => h.name) } : { ring }),
            update_ids_json: updateIds ? JSON.stringify(updateIds.map((u) => u.toLowerCase())) : null,
            state: 'pending',
            created_at: at,
            created_by: who.actor,
            finished_at: null,
          },
          targets.map((h) => h.key),
          at,
        );
        await record({
          action: 'action.create',
          target: id,
          details: { action, hosts: targets.length, ring: ring ?? null },
          event: { kind: 'action.created', data: { action: id, type: action, hosts: targets.length } },
        });
      });
      // The action as a check-in hands it out (pendingActions): the woken answers need not read it.
      const lowerIds = updateIds?.map((u) => u.toLowerCase());
      deps.agents?.wake(
        targets.map((h) => h.id),
        { id, action, createdAt: at, ...(lowerIds ? { updateIds: lowerIds } : {}) },
      );
      return reply.status(202).send({ id, hosts: targets.length });
    },
  );

  app.get(
    '/api/v1/actions',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['actions'],
        summary: 'Actions, newest first',
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 50 })),
            before: Type.Optional(IsoTime),
          },
          { additionalProperties: false },
        ),
        response: errors({ 200: Type.Object({ actions: Type.Array(ActionSummary) }) }),
      },
    },
    async (request) => ({
      actions: (await listActions(deps.store.db, request.query.limit ?? 50, request.query.before)).map(summary),
    }),
  );

  app.get(
    '/api/v1/actions/:id',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['actions'],
        summary: 'One action with its progress on every host',
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: errors({ 200: ActionDetail }),
      },
    },
    async (request) => {
      const a = await findAction(deps.store.db, request.params.id);
      if (!a) throw notFound('ACTION_NOT_FOUND', `No action ${request.params.id}.`);
      const rows = await actionHostRows(deps.store.db, a.id);
      const counts: Record<string, number> = {};
      for (const r of rows) counts[r.state] = (counts[r.state] ?? 0) + 1;
      return {
        ...summary(a),
        counts,
        hosts: rows.map((r) => ({
          host: r.name ?? r.host_key,
          state: r.state,
          phase: r.phase,
          percent: r.percent,
          hresult: r.hresult,
          message: r.message,
          updatedAt: r.updated_at,
        })),
      };
    },
  );
};
