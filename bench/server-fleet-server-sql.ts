/**
 * bench/server-fleet: the server side on the real store (BENCH_STORE=sqlite, the default of
 * `patchline server`): the whole API from buildApp over SQLite in a temporary directory, with a
 * ring that allows everything, so each report goes through the SQL gateway store and check-ins
 * through the policy. Same IPC as server-fleet-server.ts (the in-memory gateway store).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { appDeps, buildApp, REDACT_PATHS } from '../src/server/app.ts';
import { createApiToken, createEnrollToken } from '../src/server/accounts.ts';
import type { ServerDeps } from '../src/server/context.ts';
import { createEventFeed } from '../src/server/event-feed.ts';
import type { AgentGateway } from '../src/server/gateway/gateway.ts';
import { createServerMetrics } from '../src/server/metrics.ts';
import { openDatabase } from '../src/store/open.ts';

const epochMs = (): number => performance.timeOrigin + performance.now();
const dir = mkdtempSync(join(tmpdir(), 'patchline-bench-'));
const store = await openDatabase(join(dir, 'server.sqlite'));
// A catalog of realistic size (a full wsusscn2.cab lists about 350,000 updates): the reported
// updates (the agents draw theirs from the first 4,000) are in it, so the policy reads their facts.
const CATALOG_UPDATES = Number(process.env.BENCH_CATALOG_UPDATES ?? 350_000);
seedCatalog(store.sqlite!, CATALOG_UPDATES);
const deps: ServerDeps = {
  store,
  now: () => new Date(),
  secureCookies: false,
  tlsFingerprint: null,
  feed: createEventFeed(store.db, (error) => console.error(error)),
  metrics: createServerMetrics(),
};
deps.feed.start();
// Logs as `patchline server` does (info, redacted) into a file of the temporary directory, so the
// figures include what logging costs (BENCH_LOG=off for the server without any).
const app = await buildApp(deps, {
  logger:
    process.env.BENCH_LOG === 'off'
      ? false
      : { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, file: join(dir, 'server.log') },
});
app.server.keepAliveTimeout = 120_000;
const who = { actor: 'bench', ip: null };
const admin = `Bearer ${(await createApiToken(deps, who, { name: 'bench', role: 'admin' })).token}`;
const ring = await app.inject({
  method: 'PUT',
  url: '/api/v1/rings/pilot',
  headers: { authorization: admin },
  payload: { defaultAllow: true },
});
if (ring.statusCode !== 200) throw new Error(`ring: ${ring.body}`);
const enroll = await createEnrollToken(deps, who, {
  ring: 'pilot',
  expiresInHours: 24,
  singleUse: false,
  fingerprint: null,
});
const url = await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
app.server.maxConnections = 50_000;
// Connections accepted: each agent should need one for its check-ins (plus the report pool's).
let connections = 0;
app.server.on('connection', () => connections++);
const gateway = appDeps(app).agents as AgentGateway;

let profiler: Session | null = null;
process.on('message', (msg: { cmd: string; file?: string }) => {
  void (async () => {
    if (msg.cmd === 'profile-start') {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      process.send!({ reply: 'profile-start' });
    } else if (msg.cmd === 'profile-stop') {
      const { profile } = await profiler!.post('Profiler.stop');
      profiler!.disconnect();
      profiler = null;
      mkdirSync(dirname(msg.file!), { recursive: true });
      writeFileSync(msg.file!, JSON.stringify(profile));
      process.send!({ reply: 'profile-stop' });
    } else if (msg.cmd === 'action') {
      const createdAtMs = epochMs();
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/actions',
        headers: { authorization: admin },
        payload: { action: 'scan', ring: 'pilot' },
      });
      process.send!({ reply: 'action', actionId: res.json<{ id: string }>().id, createdAtMs });
    } else if (msg.cmd === 'stats') {
      const usage = process.resourceUsage();
      process.send!({
        reply: 'stats',
        connected: gateway.connected(),
        connections,
        peakRssMB: Math.round(usage.maxRSS / 1024),
        cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
      });
    } else if (msg.cmd === 'stop') {
      deps.feed.stop();
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
process.send!({ reply: 'ready', url, token: enroll.token });

/** Inserts a current catalog version of `count` updates (guid(n), KB 5,000,000 + n) with a classification and a product each. */
function seedCatalog(sqlite: NonNullable<typeof store.sqlite>, count: number): void {
  const guid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  const at = new Date().toISOString();
  sqlite.transaction(() => {
    const version = sqlite
      .prepare(
        `insert into catalog_versions (state, source, started_at, imported_at, updates_count, files_count, shards_count)
         values ('current', 'bench', ?, ?, ?, 0, 0)`,
      )
      .run(at, at, count).lastInsertRowid;
    const category = sqlite.prepare(
      'insert into catalog_categories (version_id, category_id, type, name) values (?, ?, ?, ?)',
    );
    const classification = guid(0xc000000);
    const product = guid(0xd000000);
    category.run(version, classification, 'UpdateClassification', 'Security Updates');
    category.run(version, product, 'Product', 'Windows Server 2022');
    const update = sqlite.prepare(
      `insert into catalog_updates (version_id, revision_id, update_id, revision_number, creation_date, is_bundle, is_leaf,
         update_type, title, kb, msrc_severity, release_date, browse_only)
       values (?, ?, ?, ?, ?, 0, 1, 'Software', ?, ?, ?, ?, 0)`,
    );
    const link = sqlite.prepare(
      'insert into catalog_update_categories (version_id, revision_id, category_id, type) values (?, ?, ?, ?)',
    );
    for (let n = 0; n < count; n++) {
      const kb = String(5_000_000 + n);
      update.run(
        version,
        n + 1,
        guid(n),
        200 + (n % 7),
        '2026-01-13T00:00:00Z',
        `Update for Windows (KB${kb})`,
        kb,
        n % 3 === 0 ? 'Critical' : 'Important',
        '2026-01-13T00:00:00Z',
      );
      link.run(version, n + 1, classification, 'UpdateClassification');
      link.run(version, n + 1, product, 'Product');
    }
  })();
}
