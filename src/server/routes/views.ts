/**
 * Read-only views the console needs beyond the resource routes (issue 8): the fleet overview, the
 * filter values of the updates grid, one update's page (hosts by state, failures grouped by
 * HRESULT, supersedence and prerequisites from the catalog, promotion per ring), one host's
 * history and last results with HRESULT names and meanings, and the promotion board. Everything
 * is computed from the store and the pure policy on each request, like the other fleet routes.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WSUS_STATES, type HostUpdateState, type WsusState } from '../../domain/policy/index.ts';
import { describeHResult, parseHResult } from '../../wua/hresult.ts';
import { hostKey } from '../../store/server/fleet-repo.ts';
import type { CatalogRelations, ServerDeps } from '../context.ts';
import { notFound } from '../errors.ts';
import { fleetGrid, fleetView } from '../fleet/fleet-cache.ts';
import type { FleetView } from '../fleet/policy-view.ts';
import { errors, IsoTime, Nullable } from './schemas.ts';

/** Failures listed on the overview. */
export const LATEST_FAILURES = 20;

const WsusCountsSchema = Type.Object(Object.fromEntries(WSUS_STATES.map((s) => [s, Type.Integer()])));
const zeroCounts = (): Record<WsusState, number> =>
  Object.fromEntries(WSUS_STATES.map((s) => [s, 0])) as Record<WsusState, number>;

const HResultText = { hresultName: Nullable(Type.String()), hresultMeaning: Nullable(Type.String()) };
/** Name and meaning of an HRESULT as the table knows it; nulls for text that is not one. */
function hresultText(code: string | null): { hresultName: string | null; hresultMeaning: string | null } {
  if (!code || parseHResult(code) === null) return { hresultName: null, hresultMeaning: null };
  const d = describeHResult(code);
  return { hresultName: d.name, hresultMeaning: d.meaning };
}

const Failure = Type.Object({
  host: Type.String(),
  updateId: Type.String(),
  kb: Nullable(Type.String()),
  title: Nullable(Type.String()),
  hresult: Type.String(),
  at: Nullable(IsoTime),
  attempts: Type.Integer(),
  ...HResultText,
});

const Related = Type.Object({ updateId: Type.String(), kb: Nullable(Type.String()), title: Nullable(Type.String()) });
const related = (r: { updateId: string; kb: string | null; title: string | null }) => ({
  updateId: r.updateId,
  kb: r.kb,
  title: r.title,
});

/** One update's state on every live host that reported it (hosts by key), without deciding the rest. */
function statesOf(fleet: FleetView, updateId: string, now: Date): { name: string; state: HostUpdateState }[] {
  const out: { name: string; state: HostUpdateState }[] = [];
  for (const h of fleet.hosts) {
    if (h.revoked_at) continue;
    const facts = fleet.facts.get(h.key)!;
    if (facts.updates.some((u) => u.updateId === updateId))
      out.push({ name: h.name, state: fleet.policy.stateOf(facts, updateId, now) });
  }
  return out;
}

export const viewRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.get(
    '/api/v1/overview',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['views'],
        summary:
          'The fleet at a glance: WSUS states overall and per ring, hosts offline or needing a reboot, the latest failures, catalog age, cache size',
        response: errors({
          200: Type.Object({
            all: WsusCountsSchema,
            rings: Type.Array(Type.Object({ ring: Type.String(), hosts: Type.Integer(), counts: WsusCountsSchema })),
            hosts: Type.Integer(),
            hostsOffline: Type.Integer(),
            hostsRebootPending: Type.Integer(),
            latestFailures: Type.Array(Failure),
            catalog: Type.Object({ importedAt: Nullable(IsoTime), version: Nullable(Type.String()) }),
            content: Type.Object({ bytes: Type.Integer(), files: Type.Integer() }),
          }),
        }),
      },
    },
    async () => {
      const now = deps.now();
      const nowIso = now.toISOString();
      const { view: fleet, grid } = await fleetGrid(deps, now);
      const all = zeroCounts();
      const rings = new Map<string, { hosts: number; counts: Record<WsusState, number> }>();
      let live = 0;
      let offline = 0;
      let reboot = 0;
      for (const host of fleet.hosts) {
        if (host.revoked_at) continue;
        live += 1;
        const ring = fleet.policy.ringOf({ name: host.name, ring: host.ring })?.name ?? host.ring ?? '(no ring)';
        const r = rings.get(ring) ?? { hosts: 0, counts: zeroCounts() };
        rings.set(ring, r);
        r.hosts += 1;
        if (!(host.online_until !== null && host.online_until > nowIso)) offline += 1;
        if (host.reboot_pending === 1) reboot += 1;
        const counts = grid.hosts.get(host.key)!.wsus;
        for (const s of WSUS_STATES) {
          all[s] += counts[s];
          r.counts[s] += counts[s];
        }
      }
      const names = new Map(fleet.hosts.map((h) => [h.key, h.name]));
      const failures = [...fleet.failed.entries()]
        .flatMap(([key, rows]) => rows.map((r) => ({ key, r })))
        .sort((a, b) => (b.r.lastAttemptAt ?? '').localeCompare(a.r.lastAttemptAt ?? ''))
        .slice(0, LATEST_FAILURES)
        .map(({ key, r }) => ({
          host: names.get(key) ?? key,
          updateId: r.updateId,
          kb: fleet.catalog.get(r.updateId)?.kbs[0] ?? r.kb,
          title: fleet.catalog.get(r.updateId)?.title || r.title,
          hresult: r.hresult!,
          at: r.lastAttemptAt,
          attempts: r.attempts,
          ...hresultText(r.hresult),
        }));
      const version = await deps.store.db
        .selectFrom('catalog_versions')
        .select(['id', 'imported_at', 'package_id'])
        .where('state', '=', 'current')
        .executeTakeFirst();
      const content = deps.content?.stats() ?? { bytes: 0, files: 0 };
      const order = fleet.rings.map((r) => r.name);
      return {
        all,
        hosts: live,
        hostsOffline: offline,
        hostsRebootPending: reboot,
        latestFailures: failures,
        rings: [...rings.entries()]
          .sort(([a], [b]) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9) || a.localeCompare(b))
          .map(([ring, r]) => ({ ring, hosts: r.hosts, counts: r.counts })),
        catalog: {
          importedAt: version?.imported_at ?? null,
          version: version ? (version.package_id ?? String(version.id)) : null,
        },
        content: { bytes: content.bytes, files: content.files },
      };
    },
  );

  app.get(
    '/api/v1/updates/facets',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['views'],
        summary:
          'The severities, classifications and products of the updates hosts reported (the grid’s filter values)',
        response: errors({
          200: Type.Object({
            severities: Type.Array(Type.String()),
            classifications: Type.Array(Type.String()),
            products: Type.Array(Type.String()),
          }),
        }),
      },
    },
    async () => {
      const fleet = await fleetView(deps);
      const sev = new Set<string>();
      const cls = new Set<string>();
      const prod = new Set<string>();
      for (const u of fleet.catalog.values()) {
        sev.add(u.severity ?? 'none');
        if (u.classification) cls.add(u.classification);
        u.products.forEach((p) => prod.add(p));
      }
      const sorted = (s: Set<string>) => [...s].sort((a, b) => a.localeCompare(b));
      return { severities: sorted(sev), classifications: sorted(cls), products: sorted(prod) };
    },
  );

  app.get(
    '/api/v1/updates/:id',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['views'],
        summary:
          'One update: catalog facts, its hosts by state, failures grouped by HRESULT, supersedence, prerequisites, promotion per ring',
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-fA-F-]{36}$' }) }),
        response: errors({
          200: Type.Object({
            updateId: Type.String(),
            kb: Nullable(Type.String()),
            title: Nullable(Type.String()),
            classification: Nullable(Type.String()),
            severity: Nullable(Type.String()),
            releasedAt: Nullable(Type.String()),
            products: Type.Array(Type.String()),
            cves: Type.Array(Type.String()),
            moreInfoUrls: Type.Array(Type.String()),
            inCatalog: Type.Boolean(),
            counts: WsusCountsSchema,
            decisions: Type.Object({ allowed: Type.Integer(), forbidden: Type.Integer(), deferred: Type.Integer() }),
            hosts: Type.Array(
              Type.Object({
                name: Type.String(),
                state: Nullable(Type.String()),
                wsusState: Type.String(),
                decision: Type.String(),
                hresult: Nullable(Type.String()),
              }),
            ),
            failures: Type.Array(
              Type.Object({ hresult: Type.String(), hosts: Type.Array(Type.String()), ...HResultText }),
            ),
            supersedes: Type.Array(Related),
            supersededBy: Type.Array(Related),
            prerequisites: Type.Array(Related),
            promotion: Type.Array(
              Type.Object({
                ring: Type.String(),
                status: Nullable(Type.String()),
                reason: Nullable(Type.String()),
                evidence: Type.Unknown(),
              }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const id = request.params.id.toLowerCase();
      const now = deps.now();
      const fleet = await fleetView(deps);
      const cat = fleet.catalog.get(id);
      let details: CatalogRelations | undefined;
      try {
        details = await deps.catalogDetails?.(deps.store.db, id);
      } catch (error) {
        // No current catalog (or the update is not in it): the page shows what hosts reported.
        request.log.debug({ err: error, updateId: id }, 'update page: no catalog details');
      }
      const counts = zeroCounts();
      const decisions = { allowed: 0, forbidden: 0, deferred: 0 };
      const hosts: {
        name: string;
        state: string | null;
        wsusState: string;
        decision: string;
        hresult: string | null;
      }[] = [];
      const failures = new Map<string, string[]>();
      let reportedKb: string | null = null;
      let reportedTitle: string | null = null;
      for (const { name, state: s } of statesOf(fleet, id, now)) {
        const row = fleet.rows.get(hostKey(name))?.find((r) => r.updateId === id);
        reportedKb ??= row?.kb ?? null;
        reportedTitle ??= row?.title ?? null;
        counts[s.wsus] += 1;
        if (s.applicability === 'needed') decisions[s.decision.kind] += 1;
        hosts.push({
          name,
          state: s.wapt,
          wsusState: s.wsus,
          decision: s.decision.kind,
          hresult: s.delivery.hresult,
        });
        if (s.delivery.state === 'failed' && s.delivery.hresult)
          failures.set(s.delivery.hresult, [...(failures.get(s.delivery.hresult) ?? []), name]);
      }
      if (!cat && !details && hosts.length === 0)
        throw notFound('UPDATE_NOT_FOUND', `No host reported update ${id} and the current catalog does not have it.`);
      return {
        updateId: id,
        kb: cat?.kbs[0] ?? details?.kb ?? reportedKb,
        title: cat?.title || details?.title || reportedTitle,
        classification: cat?.classification ?? details?.classification ?? null,
        severity: cat?.severity ?? details?.severity ?? null,
        releasedAt: cat?.releasedAt ?? details?.releaseDate ?? null,
        products: [...(cat?.products ?? details?.products ?? [])],
        cves: [...(details?.cveIds ?? [])],
        moreInfoUrls: [...(details?.moreInfoUrls ?? [])],
        inCatalog: cat !== undefined || details !== undefined,
        counts,
        decisions,
        hosts: hosts.sort((a, b) => a.name.localeCompare(b.name)),
        failures: [...failures.entries()]
          .map(([hresult, names]) => ({ hresult, hosts: names.sort(), ...hresultText(hresult) }))
          .sort((a, b) => b.hosts.length - a.hosts.length),
        supersedes: (details?.supersedes ?? []).filter((l) => l.depth === 1).map(related),
        supersededBy: (details?.supersededBy ?? []).filter((l) => l.depth === 1).map(related),
        prerequisites: (details?.prerequisites ?? []).flatMap((g) => g.updates.map(related)),
        promotion: fleet.rings.map((r) => {
          const p = fleet.policy.promotion(id, r.name, now);
          return { ring: r.name, status: p?.status ?? null, reason: p?.reason ?? null, evidence: p?.evidence ?? null };
        }),
      };
    },
  );

  app.get(
    '/api/v1/hosts/:name/history',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['views'],
        summary:
          'A host’s actions (newest first) and the last result of each update it attempted, with HRESULT names and meanings',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) }),
        response: errors({
          200: Type.Object({
            history: Type.Array(
              Type.Object({
                at: IsoTime,
                actionId: Type.String(),
                action: Type.String(),
                state: Type.String(),
                phase: Nullable(Type.String()),
                hresult: Nullable(Type.String()),
                message: Nullable(Type.String()),
                ...HResultText,
              }),
            ),
            results: Type.Array(
              Type.Object({
                updateId: Type.String(),
                kb: Nullable(Type.String()),
                title: Nullable(Type.String()),
                delivery: Type.String(),
                hresult: Nullable(Type.String()),
                attempts: Type.Integer(),
                at: Nullable(IsoTime),
                ...HResultText,
              }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const key = hostKey(request.params.name);
      const host = await deps.store.db.selectFrom('hosts').select(['key']).where('key', '=', key).executeTakeFirst();
      if (!host) throw notFound('HOST_NOT_FOUND', `No enrolled host ${request.params.name}.`);
      const actions = await deps.store.db
        .selectFrom('action_hosts as ah')
        .innerJoin('actions as a', 'a.id', 'ah.action_id')
        .select(['a.id', 'a.kind', 'ah.state', 'ah.phase', 'ah.hresult', 'ah.message', 'ah.updated_at'])
        .where('ah.host_key', '=', key)
        .orderBy('ah.updated_at', 'desc')
        .limit(100)
        .execute();
      const rows = await deps.store.db
        .selectFrom('host_updates')
        .selectAll()
        .where('host_key', '=', key)
        .where('attempts', '>', 0)
        .orderBy('last_attempt_at', 'desc')
        .execute();
      return {
        history: actions.map((a) => ({
          at: a.updated_at,
          actionId: a.id,
          action: a.kind,
          state: a.state,
          phase: a.phase,
          hresult: a.hresult,
          message: a.message,
          ...hresultText(a.hresult),
        })),
        results: rows.map((r) => ({
          updateId: r.update_id,
          kb: r.kb,
          title: r.title,
          delivery: r.delivery,
          hresult: r.hresult,
          attempts: r.attempts,
          at: r.last_attempt_at,
          ...hresultText(r.hresult),
        })),
      };
    },
  );

  app.get(
    '/api/v1/promotions',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['rings'],
        summary:
          'The promotion board: each update some host of a gated ring needs, with the gate’s status and evidence',
        response: errors({
          200: Type.Object({
            promotions: Type.Array(
              Type.Object({
                updateId: Type.String(),
                kb: Nullable(Type.String()),
                title: Nullable(Type.String()),
                ring: Type.String(),
                fromRing: Type.String(),
                status: Type.String(),
                reason: Type.String(),
                override: Type.Unknown(),
                evidence: Type.Unknown(),
              }),
            ),
          }),
        }),
      },
    },
    async () => {
      const now = deps.now();
      const fleet = await fleetView(deps);
      const needed = new Set<string>();
      for (const rows of fleet.rows.values())
        for (const r of rows)
          if (r.applicability === 'needed' || r.delivery === 'failed' || r.applicability === 'installed')
            needed.add(r.updateId);
      const out = [];
      for (const ring of fleet.rings.slice(1)) {
        for (const id of [...needed].sort()) {
          const p = fleet.policy.promotion(id, ring.name, now);
          if (!p) continue;
          const cat = fleet.catalog.get(id);
          out.push({
            updateId: id,
            kb: cat?.kbs[0] ?? null,
            title: cat?.title ?? null,
            ring: ring.name,
            fromRing: p.evidence.fromRing,
            status: p.status,
            reason: p.reason,
            override: p.override,
            evidence: p.evidence,
          });
        }
      }
      return { promotions: out };
    },
  );
};
