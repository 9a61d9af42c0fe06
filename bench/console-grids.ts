/**
 * bench/console-grids: how long the console's grids take to answer one page at fleet size.
 * Seeds a SQLite store (bench/console-grids-seed.ts: 10,000 hosts, a 2,000-update catalog, 30–150
 * rows per host, two rings with an install delay and a promotion gate, a few rules), builds the
 * API and asks each grid route through `inject` (no socket): the first answer (cold: the server
 * just started), the median of warm answers, and the answers after 100 hosts reported and after
 * a rule change. Prints one JSON line (milliseconds). Target (issue 8): ≤ 300 ms per page.
 *
 *   npm run bench:console-grids
 *   BENCH_HOSTS=2000 BENCH_UPDATES=500 npm run bench:console-grids
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/server/app.ts';
import { createApiToken } from '../src/server/accounts.ts';
import { createEventFeed } from '../src/server/event-feed.ts';
import { createServerMetrics } from '../src/server/metrics.ts';
import type { ServerDeps } from '../src/server/context.ts';
import { openDatabase } from '../src/store/open.ts';
import { seedFleet, seedHostName } from './console-grids-seed.ts';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 10_000);
const UPDATES = Number(process.env.BENCH_UPDATES ?? 2_000);
const WARM_RUNS = Number(process.env.BENCH_RUNS ?? 5);
const REPORTERS = 100;
const NOW = new Date('2026-12-06T03:00:00Z');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number) => Math.round(n);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-bench-grids-'));
  const store = await openDatabase(join(dir, 'server.sqlite'));
  let now = NOW;
  const deps: ServerDeps = {
    store,
    now: () => now,
    secureCookies: false,
    tlsFingerprint: 'ab'.repeat(32),
    feed: createEventFeed(store.db, (error) => console.error(error), 1000),
    metrics: createServerMetrics(),
  };
  try {
    const seedStarted = performance.now();
    const rows = await seedFleet(store.db, {
      hosts: HOSTS,
      updates: UPDATES,
      minPerHost: 30,
      maxPerHost: 150,
      now: NOW,
    });
    const seedMs = performance.now() - seedStarted;
    const app = await buildApp(deps, { logger: false });
    const actor = { actor: 'bench', ip: null };
    const admin = `Bearer ${(await createApiToken(deps, actor, { name: 'bench', role: 'admin' })).token}`;
    const call = async (method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown) => {
      // A second passes between requests, as in production: no answer is reused for the same instant.
      now = new Date(now.getTime() + 1000);
      const started = performance.now();
      const r = await app.inject({ method, url, headers: { authorization: admin }, ...(payload ? { payload } : {}) });
      if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body.slice(0, 300)}`);
      return performance.now() - started;
    };
    await call('PUT', '/api/v1/rings/pilot', { position: 0, defaultAllow: true });
    await call('PUT', '/api/v1/rings/broad', {
      position: 1,
      defaultAllow: false,
      installDelayDays: 7,
      allowedSeverities: ['Critical', 'Important'],
      promotion: { minHosts: 5, minSuccessPercent: 90, soakHours: 24, maxFailurePercent: 20 },
    });
    await call('POST', '/api/v1/rules', { action: 'allow', classifications: ['Security Updates', 'Critical Updates'] });
    await call('POST', '/api/v1/rules', { action: 'forbid', kbs: ['5000007'] });

    const routes: Record<string, string> = {
      hosts: '/api/v1/hosts?limit=100',
      hostsByMissing: '/api/v1/hosts?sort=MISSING&order=desc&limit=100',
      hostsWithFailed: '/api/v1/hosts?state=PENDING&ring=broad&limit=100',
      updates: '/api/v1/updates?limit=100',
      updatesByMissing: '/api/v1/updates?sort=MISSING&order=desc&limit=100',
      updatesCritical: '/api/v1/updates?severity=Critical&classification=Security%20Updates&limit=100',
      overview: '/api/v1/overview',
      hostUpdates: `/api/v1/hosts/${seedHostName(Math.floor(HOSTS * 0.4321))}/updates`,
    };
    // BENCH_ROUTES=hosts,overview measures only those (the whole-fleet code took seconds per request).
    const only = process.env.BENCH_ROUTES?.split(',');
    if (only) for (const name of Object.keys(routes)) if (!only.includes(name)) delete routes[name];
    const cold: Record<string, number> = {};
    const warm: Record<string, number> = {};
    const afterReports: Record<string, number> = {};
    const afterRule: Record<string, number> = {};
    for (const [name, url] of Object.entries(routes)) cold[name] = round(await call('GET', url));
    for (const [name, url] of Object.entries(routes)) {
      const times = [];
      for (let i = 0; i < WARM_RUNS; i++) times.push(await call('GET', url));
      warm[name] = round(median(times));
    }
    // 100 hosts report (what the gateway writes: their rows, then report_seq in one transaction).
    for (let h = 0; h < REPORTERS; h++) {
      const key = seedHostName((h * 97) % HOSTS);
      await store.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('host_updates')
          .set({ applicability: 'installed', delivery: 'installed', installed_at: NOW.toISOString() })
          .where('host_key', '=', key)
          .where('applicability', '=', 'needed')
          .execute();
        await trx.updateTable('hosts').set({ report_seq: 2 }).where('key', '=', key).execute();
      });
    }
    for (const [name, url] of Object.entries(routes)) afterReports[name] = round(await call('GET', url));
    await call('POST', '/api/v1/rules', { action: 'forbid', kbs: ['5000011'] });
    now = new Date(now.getTime() + 3 * 86_400_000);
    for (const [name, url] of Object.entries(routes)) afterRule[name] = round(await call('GET', url));
    await app.close();
    console.log(
      JSON.stringify({
        bench: 'console-grids',
        store: 'sqlite',
        hosts: HOSTS,
        catalogUpdates: UPDATES,
        hostUpdateRows: rows,
        seedSeconds: Math.round(seedMs / 100) / 10,
        coldMs: cold,
        warmMedianMs: warm,
        after100ReportsMs: afterReports,
        afterRuleChangeAndClockMoveMs: afterRule,
        peakRssMB: Math.round(process.memoryUsage().rss / 1048576),
        targetMs: 300,
      }),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
