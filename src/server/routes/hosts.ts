/**
 * Hosts: the fleet grid (server-side paging, sorting and filtering, with WAPT and WSUS counts per
 * host), one host, its updates with their three facets and derived states, and the admin's
 * revoke (cuts the agent's credential at once) and forget (the name may enroll again).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WAPT_STATES, WSUS_STATES, type HostUpdateState } from '../../domain/policy/index.ts';
import { findHostByName, hostKey } from '../../store/server/fleet-repo.ts';
import { actorOfRequest, commitChange } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { conflict, notFound } from '../errors.ts';
import { fleetGrid, fleetView } from '../fleet/fleet-cache.ts';
import type { HostCounts } from '../fleet/fleet-grid.ts';
import type { FleetHost, FleetView } from '../fleet/policy-view.ts';
import { errors, IsoTime, MAX_PAGE, Nullable } from './schemas.ts';

const counts = (keys: readonly string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])));
export const WaptCounts = counts(WAPT_STATES);
export const WsusCounts = counts(WSUS_STATES);

const Host = Type.Object({
  name: Type.String(),
  ring: Nullable(Type.String({ description: 'the ring the host is in (enrollment, else member patterns)' })),
  online: Type.Boolean(),
  lastSeenAt: Nullable(IsoTime),
  lastScanAt: Nullable(IsoTime),
  rebootPending: Type.Boolean(),
  revoked: Type.Boolean(),
  enrolledAt: IsoTime,
  agentVersion: Nullable(Type.String()),
  counts: WaptCounts,
  wsusCounts: WsusCounts,
});
type HostView = Static<typeof Host>;

export const HostUpdate = Type.Object({
  updateId: Type.String(),
  kb: Nullable(Type.String()),
  title: Nullable(Type.String()),
  classification: Nullable(Type.String()),
  severity: Nullable(Type.String()),
  state: Nullable(Type.Union(WAPT_STATES.map((s) => Type.Literal(s)))),
  wsusState: Type.Union(WSUS_STATES.map((s) => Type.Literal(s))),
  applicability: Type.String(),
  delivery: Type.String(),
  decision: Type.String({ description: 'allowed | forbidden | deferred' }),
  decidedBy: Type.Unknown({ description: 'which rule or ring setting decided (DecisionReason)' }),
  matchedRules: Type.Array(Type.String()),
  deferredUntil: Nullable(IsoTime),
  hresult: Nullable(Type.String()),
  attempts: Type.Integer(),
  lastAttemptAt: Nullable(IsoTime),
  installedAt: Nullable(IsoTime),
});

/** Counts of one host from its states (one host's page). */
function countStates(states: readonly HostUpdateState[]): HostCounts {
  const wapt = Object.fromEntries(WAPT_STATES.map((s) => [s, 0])) as Record<string, number>;
  const wsus = Object.fromEntries(WSUS_STATES.map((s) => [s, 0])) as Record<string, number>;
  for (const s of states) {
    if (s.wapt) wapt[s.wapt]! += 1;
    wsus[s.wsus]! += 1;
  }
  return { wapt, wsus } as unknown as HostCounts;
}

function hostView(fleet: FleetView, h: FleetHost, counts: HostCounts, now: string): HostView {
  const ring = fleet.policy.ringOf({ name: h.name, ring: h.ring })?.name ?? h.ring;
  return {
    name: h.name,
    ring,
    online: !h.revoked_at && h.online_until !== null && h.online_until > now,
    lastSeenAt: h.last_seen_at,
    lastScanAt: h.last_scan_at,
    rebootPending: h.reboot_pending === 1,
    revoked: h.revoked_at !== null,
    enrolledAt: h.enrolled_at,
    agentVersion: h.agent_version,
    counts: { ...counts.wapt },
    wsusCounts: { ...counts.wsus },
  };
}

/** The order String#localeCompare gives, without building a collator per comparison. */
const COLLATOR = new Intl.Collator();

const SORTS = ['name', 'ring', 'lastSeenAt', 'lastScanAt', 'MISSING', 'PENDING', 'DISCARDED', 'OK', 'failed'] as const;

export const hostRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  const NameParam = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });

  app.get(
    '/api/v1/hosts',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['hosts'],
        summary: 'Hosts with their state counts; filter, sort and page on the server',
        querystring: Type.Object(
          {
            ring: Type.Optional(Type.String({ maxLength: 64 })),
            q: Type.Optional(Type.String({ maxLength: 253, description: 'substring of the name' })),
            online: Type.Optional(Type.Boolean()),
            rebootPending: Type.Optional(Type.Boolean()),
            state: Type.Optional(
              Type.Union(
                WAPT_STATES.map((s) => Type.Literal(s)),
                { description: 'hosts with at least one update in this state' },
              ),
            ),
            sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)))),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
            offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
          },
          { additionalProperties: false },
        ),
        response: errors({ 200: Type.Object({ hosts: Type.Array(Host), total: Type.Integer() }) }),
      },
    },
    async (request) => {
      const q = request.query;
      const now = deps.now();
      // The counts of every host come from the fleet grid (kept between requests, fleet-grid.ts).
      const { view: fleet, grid } = await fleetGrid(deps, now);
      const nowIso = now.toISOString();
      const sort = (q.sort ?? 'name') as (typeof SORTS)[number];
      let hosts = fleet.hosts.map((h) => ({ view: hostView(fleet, h, grid.hosts.get(h.key)!, nowIso) }));
      if (q.ring !== undefined) hosts = hosts.filter((h) => h.view.ring === q.ring);
      if (q.q) hosts = hosts.filter((h) => h.view.name.toLowerCase().includes(q.q!.toLowerCase()));
      if (q.online !== undefined) hosts = hosts.filter((h) => h.view.online === q.online);
      if (q.rebootPending !== undefined) hosts = hosts.filter((h) => h.view.rebootPending === q.rebootPending);
      if (q.state) hosts = hosts.filter((h) => h.view.counts[q.state!]! > 0);
      const key = (h: HostView): string | number =>
        sort === 'name'
          ? h.name.toLowerCase()
          : sort === 'ring'
            ? (h.ring ?? '')
            : sort === 'lastSeenAt'
              ? (h.lastSeenAt ?? '')
              : sort === 'lastScanAt'
                ? (h.lastScanAt ?? '')
                : sort === 'failed'
                  ? h.wsusCounts.failed!
                  : h.counts[sort]!;
      const dir = q.order === 'desc' ? -1 : 1;
      // Each host's key is computed once (10,000 hosts: a comparator that lower-cases names on every
      // comparison was most of the request), ties by name as localeCompare orders them.
      const keyed = hosts.map((h) => ({ h, k: key(h.view) }));
      keyed.sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : COLLATOR.compare(a.h.view.name, b.h.view.name)));
      hosts = keyed.map((x) => x.h);
      const offset = q.offset ?? 0;
      const page = hosts.slice(offset, offset + (q.limit ?? 100));
      return { hosts: page.map((h) => h.view), total: hosts.length };
    },
  );

  app.get(
    '/api/v1/hosts/:name',
    {
      config: { access: 'viewer' },
      schema: { tags: ['hosts'], summary: 'One host', params: NameParam, response: errors({ 200: Host }) },
    },
    async (request) => {
      const now = deps.now();
      const fleet = await fleetView(deps);
      const h = fleet.hosts.find((x) => x.key === hostKey(request.params.name));
      if (!h) throw notFound('HOST_NOT_FOUND', `No enrolled host ${request.params.name}.`);
      return hostView(fleet, h, countStates(fleet.policy.hostStates(fleet.facts.get(h.key)!, now)), now.toISOString());
    },
  );

  app.get(
    '/api/v1/hosts/:name/updates',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['hosts'],
        summary: 'A host’s updates: applicability, decision, delivery and the WAPT/WSUS states derived from them',
        params: NameParam,
        response: errors({ 200: Type.Object({ updates: Type.Array(HostUpdate) }) }),
      },
    },
    async (request) => {
      const now = deps.now();
      const fleet = await fleetView(deps);
      const key = hostKey(request.params.name);
      const facts = fleet.facts.get(key);
      if (!facts) throw notFound('HOST_NOT_FOUND', `No enrolled host ${request.params.name}.`);
      const rows = new Map((fleet.rows.get(key) ?? []).map((r) => [r.updateId, r]));
      return {
        updates: fleet.policy.hostStates(facts, now).map((s) => {
          const row = rows.get(s.updateId)!;
          const cat = fleet.catalog.get(s.updateId);
          return {
            updateId: s.updateId,
            kb: cat?.kbs[0] ?? row.kb,
            title: cat?.title || row.title,
            classification: cat?.classification ?? null,
            severity: cat?.severity ?? null,
            state: s.wapt,
            wsusState: s.wsus,
            applicability: s.applicability,
            delivery: s.delivery.state,
            decision: s.decision.kind,
            decidedBy: s.decision.by,
            matchedRules: [...s.decision.matchedRules],
            deferredUntil: s.decision.until,
            hresult: s.delivery.hresult,
            attempts: s.delivery.attempts,
            lastAttemptAt: row.lastAttemptAt,
            installedAt: row.installedAt,
          };
        }),
      };
    },
  );

  app.post(
    '/api/v1/hosts/:name/revoke',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['hosts'],
        summary: 'Revoke a host: its agent credential stops working at once; it cannot re-enroll until forgotten',
        params: NameParam,
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      let revokedId: string | undefined;
      await commitChange(deps, actorOfRequest(request), async (trx, record) => {
        const h = await findHostByName(trx, request.params.name);
        if (!h) throw notFound('HOST_NOT_FOUND', `No enrolled host ${request.params.name}.`);
        if (h.revoked_at) throw conflict('HOST_REVOKED', `Host ${h.name} is already revoked.`);
        // The credential's hash stays: the agent is then told it was revoked (AGENT_HOST_REVOKED), not
        // that its credential is unknown. Nothing clears revoked_at; only forgetting the host does.
        await trx
          .updateTable('hosts')
          .set({ revoked_at: deps.now().toISOString(), online_until: null })
          .where('key', '=', h.key)
          .execute();
        await record({ action: 'host.revoke', target: h.key, event: { kind: 'host.revoked', data: { host: h.name } } });
        revokedId = h.id;
      });
      // A held check-in answers now, so the agent's next request meets the revocation.
      if (revokedId) deps.agents?.wake([revokedId]);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/api/v1/hosts/:name',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['hosts'],
        summary: 'Forget a host and its state (it may enroll again with a token)',
        params: NameParam,
        response: errors({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await commitChange(deps, actorOfRequest(request), async (trx, record) => {
        const h = await findHostByName(trx, request.params.name);
        if (!h) throw notFound('HOST_NOT_FOUND', `No enrolled host ${request.params.name}.`);
        await trx.deleteFrom('host_updates').where('host_key', '=', h.key).execute();
        await trx.deleteFrom('hosts').where('key', '=', h.key).execute();
        await record({ action: 'host.delete', target: h.key, event: { kind: 'host.deleted', data: { host: h.name } } });
      });
      return reply.status(204).send(null);
    },
  );
};
