/**
 * bench/server-fleet: the server side on the real store (BENCH_STORE=sqlite, the default of
 * `patchline server`): the whole API from buildApp over SQLite in a temporary directory, with a
 * ring that allows everything, so each report goes through the SQL gateway store and check-ins
 * through the policy. Same IPC as server-fleet-server.ts (the in-memory gateway store).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appDeps, buildApp } from '../src/server/app.ts';
import { createApiToken, createEnrollToken } from '../src/server/accounts.ts';
import type { ServerDeps } from '../src/server/context.ts';
import { createEventFeed } from '../src/server/event-feed.ts';
import type { AgentGateway } from '../src/server/gateway/gateway.ts';
import { createServerMetrics } from '../src/server/metrics.ts';
import { openDatabase } from '../src/store/open.ts';

const epochMs = (): number => performance.timeOrigin + performance.now();
const dir = mkdtempSync(join(tmpdir(), 'patchline-bench-'));
const store = await openDatabase(join(dir, 'server.sqlite'));
const deps: ServerDeps = {
  store,
  now: () => new Date(),
  secureCookies: false,
  tlsFingerprint: null,
  feed: createEventFeed(store.db, (error) => console.error(error)),
  metrics: createServerMetrics(),
};
deps.feed.start();
const app = await buildApp(deps, { logger: false });
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
const gateway = appDeps(app).agents as AgentGateway;

process.on('message', (msg: { cmd: string }) => {
  void (async () => {
    if (msg.cmd === 'action') {
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
