/**
 * Rules and rings (admin changes them; everyone reads): validated by the pure policy
 * (src/domain/policy), refused with 400 and the first problem's stable code — every problem in
 * `details` — and saved with an audit entry. A preview says what a rule change would do before it
 * is saved; promotion overrides let an admin promote or halt an update into a ring by hand.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CLASSIFICATIONS, REBOOT_POLICY_VALUES, RULE_SEVERITIES_LIST, WEEKDAY_VALUES } from './policy-schemas.ts';
import {
  DEFAULT_RING,
  previewRuleChange,
  validateRing,
  validateRule,
  type PolicyProblem,
  type Ring,
  type Rule,
} from '../../domain/policy/index.ts';
import { actorOfRequest, commitChange } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { badRequest, notFound } from '../errors.ts';
import { newId } from '../auth/secrets.ts';
import { loadRings, loadRules } from '../fleet/policy-view.ts';
import { fleetView } from '../fleet/fleet-cache.ts';
import { errors, IsoTime, Nullable } from './schemas.ts';

const Strings = (max = 200) =>
  Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: max }));
const RuleBody = Type.Object(
  {
    action: Type.Union([Type.Literal('allow'), Type.Literal('forbid')]),
    updateIds: Strings(),
    kbs: Strings(),
    classifications: Type.Optional(
      Type.Array(Type.String({ description: CLASSIFICATIONS.join(', ') }), { maxItems: 20 }),
    ),
    products: Strings(),
    severities: Type.Optional(
      Type.Array(Type.String({ description: RULE_SEVERITIES_LIST.join(', ') }), { maxItems: 5 }),
    ),
    titlePattern: Type.Optional(Type.String({ maxLength: 200 })),
    rings: Strings(50),
    hosts: Strings(1000),
    comment: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
const RuleView = Type.Composite([
  Type.Omit(RuleBody, ['comment']),
  Type.Object({ id: Type.String(), comment: Nullable(Type.String()), createdAt: IsoTime, createdBy: Type.String() }),
]);

const Window = Type.Object(
  {
    weekdays: Type.Array(Type.String({ description: WEEKDAY_VALUES.join(', ') }), { maxItems: 7 }),
    start: Type.String({ description: 'HH:MM local time' }),
    durationMinutes: Type.Integer(),
    timeZone: Type.String({ description: 'IANA zone, e.g. Europe/Paris' }),
  },
  { additionalProperties: false },
);
const Promotion = Type.Object(
  {
    minHosts: Type.Integer(),
    minSuccessPercent: Type.Number(),
    soakHours: Type.Number(),
    maxFailurePercent: Type.Number(),
  },
  { additionalProperties: false },
);
const RingBody = Type.Object(
  {
    position: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1000, description: 'order of promotion: the lowest is the pilot' }),
    ),
    members: Type.Optional(Type.Array(Type.String({ maxLength: 253 }), { maxItems: 10_000 })),
    defaultAllow: Type.Optional(Type.Boolean()),
    allowedSeverities: Type.Optional(Nullable(Type.Array(Type.String(), { maxItems: 5 }))),
    installDelayDays: Type.Optional(Type.Integer()),
    scanIntervalMinutes: Type.Optional(Type.Integer()),
    maintenanceWindows: Type.Optional(Type.Array(Window, { maxItems: 50 })),
    rebootPolicy: Type.Optional(Type.String({ description: REBOOT_POLICY_VALUES.join(', ') })),
    installAtShutdown: Type.Optional(Type.Boolean()),
    directDownload: Type.Optional(Type.Boolean()),
    promotion: Type.Optional(Nullable(Promotion)),
  },
  { additionalProperties: false },
);
const RingView = Type.Object({
  name: Type.String(),
  position: Type.Integer(),
  members: Type.Array(Type.String()),
  defaultAllow: Type.Boolean(),
  allowedSeverities: Nullable(Type.Array(Type.String())),
  installDelayDays: Type.Integer(),
  scanIntervalMinutes: Type.Integer(),
  maintenanceWindows: Type.Array(Window),
  rebootPolicy: Type.String(),
  installAtShutdown: Type.Boolean(),
  directDownload: Type.Boolean(),
  promotion: Nullable(Promotion),
  updatedAt: IsoTime,
  updatedBy: Type.String(),
});

function refuse(problems: readonly PolicyProblem[], what: string): never {
  const first = problems[0]!;
  throw badRequest(
    first.code,
    `${what}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`,
    problems,
  );
}

type RuleInput = Omit<Rule, 'id'> & { comment?: string };
const ruleSpec = (body: RuleInput) => {
  const { action: _a, comment: _c, ...spec } = body;
  return spec;
};

export const policyRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  const IdParam = Type.Object({ id: Type.String({ maxLength: 64 }) });
  const NameParam = Type.Object({ name: Type.String({ maxLength: 64 }) });

  app.get(
    '/api/v1/rules',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['rules'],
        summary: 'Allow and forbid rules (forbid always wins)',
        response: errors({ 200: Type.Object({ rules: Type.Array(RuleView) }) }),
      },
    },
    async () => {
      const rows = await deps.store.db.selectFrom('rules').selectAll().orderBy('created_at').orderBy('id').execute();
      return {
        rules: rows.map((r) => ({
          ...JSON.parse(r.spec_json),
          id: r.id,
          action: r.action as 'allow',
          comment: r.comment,
          createdAt: r.created_at,
          createdBy: r.created_by,
        })),
      };
    },
  );

  app.post(
    '/api/v1/rules',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['rules'],
        summary: 'Add a rule',
        body: RuleBody,
        response: errors({ 201: Type.Object({ id: Type.String() }) }),
      },
    },
    async (request, reply) => {
      const rings = (await loadRings(deps.store.db)).map((r) => r.name);
      const problems = validateRule(request.body as RuleInput, rings);
      if (problems.length) refuse(problems, 'The rule is not valid');
      const id = `r-${newId(6)}`;
      await commitChange(deps, actorOfRequest(request), async (trx, record) => {
        await trx
          .insertInto('rules')
          .values({
            id,
            action: request.body.action,
            spec_json: JSON.stringify(ruleSpec(request.body as RuleInput)),
            comment: request.body.comment ?? null,
            created_at: deps.now().toISOString(),
            created_by: actorOfRequest(request).actor,
          })
          .execute();
        await record({
          action: 'rule.create',
          target: id,
          details: { ...request.body },
          event: { kind: 'rule.created', data: { rule: id } },
        });
      });
      return reply.status(201).send({ id });
    },
  );

  app.delete(
    '/api/v1/rules/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['rules'], summary: 'Delete a rule', params: IdParam, response: errors({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      await commitChange(deps, actorOfRequest(request), async (trx, record) => {
        const row = await trx.selectFrom('rules').selectAll().where('id', '=', request.params.id).executeTakeFirst();
        if (!row) throw notFound('RULE_NOT_FOUND', `No rule ${request.params.id}.`);
        await trx.deleteFrom('rules').where('id', '=', row.id).execute();
        await record({
          action: 'rule.delete',
          target: row.id,
          details: { action: row.action, ...JSON.parse(row.spec_json) },
          event: { kind: 'rule.deleted', data: { rule: row.id } },
        });
      });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/rules/preview',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['rules'],
        summary: 'What adding and/or deleting rules would change, before saving (nothing is saved)',
        body: Type.Object(
          {
            add: Type.Optional(Type.Array(RuleBody, { maxItems: 50 })),
            remove: Type.Optional(Type.Array(Type.String(), { maxItems: 200 })),
          },
          { additionalProperties: false },
        ),
        response: errors({ 200: Type.Unknown({ description: 'RulePreview (src/domain/policy/preview.ts)' }) }),
      },
    },
    async (request) => {
      const fleet = await fleetView(deps);
      const ringNames = fleet.rings.map((r) => r.name);
      const added = (request.body.add ?? []).map((r, i) => {
        const problems = validateRule(r as RuleInput, ringNames);
        if (problems.length) refuse(problems, `Rule add[${i}] is not valid`);
        return { ...ruleSpec(r as RuleInput), action: r.action, id: `preview-${i}` } as Rule;
      });
      const removed = new Set(request.body.remove ?? []);
      const after = [...fleet.rules.filter((r) => !removed.has(r.id)), ...added];
      return previewRuleChange(
        fleet.rules,
        after,
        { hosts: [...fleet.facts.values()], rings: fleet.rings, catalog: fleet.catalog, overrides: [] },
        deps.now(),
      );
    },
  );

  app.get(
    '/api/v1/rings',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['rings'],
        summary: 'Rings in promotion order (pilot first)',
        response: errors({ 200: Type.Object({ rings: Type.Array(RingView) }) }),
      },
    },
    async () => {
      const rows = await deps.store.db.selectFrom('rings').selectAll().orderBy('position').orderBy('name').execute();
      const rings = await loadRings(deps.store.db);
      return {
        rings: rings.map((r, i) => ({
          ...r,
          position: rows[i]!.position,
          updatedAt: rows[i]!.updated_at,
          updatedBy: rows[i]!.updated_by,
        })),
      };
    },
  );

  app.put(
    '/api/v1/rings/:name',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['rings'],
        summary: 'Create or replace a ring (omitted settings take their defaults)',
        params: NameParam,
        body: RingBody,
        response: errors({ 200: RingView }),
      },
    },
    async (request) => {
      const { position, ...settings } = request.body;
      const existing = await deps.store.db
        .selectFrom('rings')
        .select(['position'])
        .where('name', '=', request.params.name)
        .executeTakeFirst();
      const count = await deps.store.db
        .selectFrom('rings')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      const ring = { ...DEFAULT_RING, ...settings, name: request.params.name } as Ring;
      const problems = validateRing(ring);
      if (problems.length) refuse(problems, 'The ring is not valid');
      const pos = position ?? existing?.position ?? Number(count.n);
      const at = deps.now().toISOString();
      const who = actorOfRequest(request);
      await commitChange(deps, who, async (trx, record) => {
        const { name: _n, ...spec } = ring;
        const values = {
          name: ring.name,
          position: pos,
          spec_json: JSON.stringify(spec),
          updated_at: at,
          updated_by: who.actor,
        };
        await trx
          .insertInto('rings')
          .values(values)
          .onConflict((oc) =>
            oc
              .column('name')
              .doUpdateSet({ position: pos, spec_json: values.spec_json, updated_at: at, updated_by: who.actor }),
          )
          .execute();
        await record({
          action: existing ? 'ring.update' : 'ring.create',
          target: ring.name,
          details: { ...request.body },
          event: { kind: 'ring.updated', data: { ring: ring.name } },
        });
      });
      return {
        ...ring,
        allowedSeverities: ring.allowedSeverities ? [...ring.allowedSeverities] : null,
        position: pos,
        updatedAt: at,
        updatedBy: who.actor,
      } as never;
    },
  );

  app.delete(
    '/api/v1/rings/:name',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['rings'],
        summary: 'Delete a ring (rules scoped to it are refused until changed)',
        params: NameParam,
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      const rules = await loadRules(deps.store.db);
      const users = rules.filter((r) => r.rings?.includes(request.params.name)).map((r) => r.id);
      if (users.length)
        throw badRequest(
          'RING_IN_USE',
          `Rules ${users.join(', ')} are scoped to ring ${request.params.name}: change or delete them first.`,
        );
      await commitChange(deps, actorOfRequest(request), async (trx, record) => {
        const r = await trx.deleteFrom('rings').where('name', '=', request.params.name).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound('RING_NOT_FOUND', `No ring ${request.params.name}.`);
        await record({
          action: 'ring.delete',
          target: request.params.name,
          event: { kind: 'ring.deleted', data: { ring: request.params.name } },
        });
      });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/updates/:id/promotion',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['rings'],
        summary: 'Promotion of an update through the rings, with its evidence',
        params: IdParam,
        response: errors({
          200: Type.Object({ rings: Type.Array(Type.Object({ ring: Type.String(), promotion: Type.Unknown() })) }),
        }),
      },
    },
    async (request) => {
      const fleet = await fleetView(deps);
      const id = request.params.id.toLowerCase();
      return {
        rings: fleet.rings.map((r) => ({ ring: r.name, promotion: fleet.policy.promotion(id, r.name, deps.now()) })),
      };
    },
  );

  app.post(
    '/api/v1/promotions',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['rings'],
        summary: 'Promote or halt an update into a ring by hand (recorded with who and when)',
        body: Type.Object(
          {
            updateId: Type.String({ pattern: '^[0-9a-fA-F-]{36}$' }),
            ring: Type.String({ maxLength: 64 }),
            action: Type.Union([Type.Literal('promote'), Type.Literal('halt')]),
          },
          { additionalProperties: false },
        ),
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      const rings = await loadRings(deps.store.db);
      if (!rings.some((r) => r.name === request.body.ring))
        throw notFound('RING_NOT_FOUND', `No ring ${request.body.ring}.`);
      const who = actorOfRequest(request);
      const at = deps.now().toISOString();
      const updateId = request.body.updateId.toLowerCase();
      await commitChange(deps, who, async (trx, record) => {
        await trx
          .insertInto('promotion_overrides')
          .values({ update_id: updateId, ring: request.body.ring, action: request.body.action, by: who.actor, at })
          .onConflict((oc) =>
            oc.columns(['update_id', 'ring']).doUpdateSet({ action: request.body.action, by: who.actor, at }),
          )
          .execute();
        await record({
          action: `promotion.${request.body.action}`,
          target: `${updateId}@${request.body.ring}`,
          event: {
            kind: 'promotion.changed',
            data: { update: updateId, ring: request.body.ring, action: request.body.action },
          },
        });
      });
      return reply.status(204).send(null);
    },
  );
};
