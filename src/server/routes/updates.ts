/**
 * Updates across the fleet (WAPT's Windows Updates grid): every update some host reported, with
 * its catalog facts, host counts per WAPT and WSUS state, how the policy decided it across hosts,
 * and whether the server has its files. Filtered, sorted and paged on the server.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WAPT_STATES } from '../../domain/policy/index.ts';
import type { ServerDeps } from '../context.ts';
import { fleetGrid } from '../fleet/fleet-cache.ts';
import type { FleetRow } from '../fleet/policy-view.ts';
import { WaptCounts, WsusCounts } from './hosts.ts';
import { errors, IsoTime, MAX_PAGE, Nullable } from './schemas.ts';

const Update = Type.Object({
  updateId: Type.String(),
  kb: Nullable(Type.String()),
  kbs: Type.Array(Type.String()),
  title: Nullable(Type.String()),
  classification: Nullable(Type.String()),
  severity: Nullable(Type.String()),
  products: Type.Array(Type.String()),
  releasedAt: Nullable(IsoTime),
  inCatalog: Type.Boolean(),
  counts: WaptCounts,
  wsusCounts: WsusCounts,
  decisions: Type.Object(
    { allowed: Type.Integer(), forbidden: Type.Integer(), deferred: Type.Integer() },
    { description: 'hosts that need it, by decision' },
  ),
  cache: Type.String({ description: 'not-cached | downloading | cached (the server’s content cache)' }),
});
type UpdateView = Static<typeof Update>;
/** The order String#localeCompare gives, without building a collator per comparison. */
const COLLATOR = new Intl.Collator();
const SORTS = ['kb', 'title', 'releasedAt', 'severity', 'MISSING', 'PENDING', 'OK', 'DISCARDED', 'failed'] as const;

export const updateRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.get(
    '/api/v1/updates',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['updates'],
        summary: 'Updates hosts reported, with host counts per state and decision; filter, sort and page on the server',
        querystring: Type.Object(
          {
            state: Type.Optional(
              Type.Union(
                WAPT_STATES.map((s) => Type.Literal(s)),
                { description: 'updates with at least one host in this state' },
              ),
            ),
            classification: Type.Optional(Type.String({ maxLength: 100 })),
            severity: Type.Optional(
              Type.String({ maxLength: 20, description: 'Critical, Important, Moderate, Low or none' }),
            ),
            product: Type.Optional(Type.String({ maxLength: 200 })),
            q: Type.Optional(Type.String({ maxLength: 200, description: 'KB number or words of the title' })),
            decision: Type.Optional(
              Type.Union([Type.Literal('allowed'), Type.Literal('forbidden'), Type.Literal('deferred')]),
            ),
            sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)))),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
            offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
          },
          { additionalProperties: false },
        ),
        response: errors({ 200: Type.Object({ updates: Type.Array(Update), total: Type.Integer() }) }),
      },
    },
    async (request) => {
      const q = request.query;
      const now = deps.now();
      // Counts per update come from the fleet grid (kept between requests, fleet-grid.ts).
      const { view: fleet, grid } = await fleetGrid(deps, now);
      // What the first live host (by name) reported stands in for what the catalog lacks.
      const firstRow = new Map<string, FleetRow>();
      for (const h of fleet.hosts) {
        if (h.revoked_at) continue;
        for (const r of fleet.rows.get(h.key) ?? []) if (!firstRow.has(r.updateId)) firstRow.set(r.updateId, r);
        if (firstRow.size === grid.updates.size) break;
      }
      const byUpdate = new Map<string, UpdateView>();
      for (const [updateId, n] of grid.updates) {
        const cat = fleet.catalog.get(updateId);
        const row = firstRow.get(updateId);
        byUpdate.set(updateId, {
          updateId,
          kb: cat?.kbs[0] ?? row?.kb ?? null,
          kbs: [...(cat?.kbs ?? (row?.kb ? [row.kb] : []))],
          title: cat?.title || row?.title || null,
          classification: cat?.classification ?? null,
          severity: cat?.severity ?? null,
          products: [...(cat?.products ?? [])],
          releasedAt: cat?.releasedAt ?? null,
          inCatalog: cat !== undefined,
          counts: { ...n.wapt },
          wsusCounts: { ...n.wsus },
          decisions: { ...n.decisions },
          cache: cat?.cache ?? 'not-cached',
        });
      }
      let list = [...byUpdate.values()];
      if (q.state) list = list.filter((u) => u.counts[q.state!]! > 0);
      if (q.classification)
        list = list.filter((u) => u.classification?.toLowerCase() === q.classification!.toLowerCase());
      if (q.severity) list = list.filter((u) => (u.severity ?? 'none').toLowerCase() === q.severity!.toLowerCase());
      if (q.product) list = list.filter((u) => u.products.some((p) => p.toLowerCase() === q.product!.toLowerCase()));
      if (q.decision) list = list.filter((u) => u.decisions[q.decision!] > 0);
      if (q.q) {
        const text = q.q.trim().toLowerCase().replace(/^kb/, '');
        list = list.filter(
          (u) =>
            u.kbs.includes(text) ||
            (u.title ?? '').toLowerCase().includes(q.q!.trim().toLowerCase()) ||
            u.updateId === text,
        );
      }
      const sort = (q.sort ?? 'releasedAt') as (typeof SORTS)[number];
      const key = (u: UpdateView): string | number =>
        sort === 'kb'
          ? (u.kb ?? '')
          : sort === 'title'
            ? (u.title ?? '')
            : sort === 'releasedAt'
              ? (u.releasedAt ?? '')
              : sort === 'severity'
                ? (u.severity ?? '')
                : sort === 'failed'
                  ? u.wsusCounts.failed!
                  : u.counts[sort]!;
      const dir = (q.order ?? (sort === 'releasedAt' ? 'desc' : 'asc')) === 'desc' ? -1 : 1;
      const keyed = list.map((u) => ({ u, k: key(u) }));
      keyed.sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : COLLATOR.compare(a.u.updateId, b.u.updateId)));
      list = keyed.map((x) => x.u);
      const offset = q.offset ?? 0;
      return { updates: list.slice(offset, offset + (q.limit ?? 100)), total: list.length };
    },
  );
};
