/**
 * The lab fleet against the agent gateway over real HTTP: every host of examples/lab/patch-night.yaml
 * enrolls, scans offline against the server's signed lab cab (downloaded once, verified) and
 * reports; the server's per-host applicable set equals the lab's own applicability. Then an
 * install action reaches the connected agents within two seconds and its progress arrives.
 * The gateway runs on a bare Fastify app with the in-memory store (the server composes the same
 * plugin with its own store).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Fastify from 'fastify';
import { encodeEnrollToken, tokenSecretHash, type AgentPolicy } from '../src/domain/agent-protocol.ts';
import { createAgentGateway, type GatewayEvent } from '../src/server/gateway/gateway.ts';
import { MemoryGatewayStore } from '../src/server/gateway/store.ts';
import { applicableUpdates } from '../src/lab/applicability.ts';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { generateCatalog } from '../src/lab/catalog-gen.ts';
import { startLabFleet } from '../src/lab/fleet.ts';
import { readHostState } from '../src/lab/host-state.ts';
import { startPayloadUpstream } from './support/payload-upstream.ts';
import { loadScenario } from '../src/lab/scenario.ts';

const SCENARIO = resolve(import.meta.dirname, '../examples/lab/patch-night.yaml');
const SECRET = 'labfleet-secret-0123456789';

/** Resolves with the first published event matching `match`, or rejects after `ms`. */
function waitForEvent(
  bus: EventEmitter,
  match: (e: GatewayEvent) => boolean,
  ms: number,
  what: string,
): Promise<GatewayEvent> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      bus.off('event', on);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const on = (e: GatewayEvent): void => {
      if (!match(e)) return;
      clearTimeout(timer);
      bus.off('event', on);
      resolvePromise(e);
    };
    bus.on('event', on);
  });
}

test(
  'lab fleet: every host reports what the lab says it needs; an install action arrives within 2 s and reports progress',
  { timeout: 180_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-fleet-'));
    const scenario = await loadScenario(SCENARIO);
    const upstream = await startPayloadUpstream(scenario);
    const { payloads } = upstream;
    const upstreamUrl = upstream.url;
    const cab = await generateCatalog(
      scenario,
      { out: join(dir, 'wsusscn2.cab'), upstreamUrl, rootDir: join(dir, 'root') },
      defaultCatalogPacker(),
    );
    const cabBytes = await readFile(cab.out);
    const catalog = {
      path: cab.out,
      size: (await stat(cab.out)).size,
      sha256: createHash('sha256').update(cabBytes).digest('hex'),
    };

    const store = new MemoryGatewayStore();
    store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
    let allowed: string[] = [];
    const policyFor = async (): Promise<AgentPolicy> => ({
      ring: 'pilot',
      scanIntervalSeconds: 3600,
      scanSource: 'offline',
      windows: [],
      reboot: 'if-required',
      installAtShutdown: false,
      directDownload: true,
      allowedUpdateIds: allowed,
    });
    const bus = new EventEmitter();
    const events: GatewayEvent[] = [];
    const gateway = createAgentGateway({
      store,
      now: () => new Date(),
      policyFor,
      catalog: async () => catalog,
      content: async () => null,
      publish: (e) => {
        events.push(e);
        bus.emit('event', e);
      },
    });
    const app = Fastify();
    await app.register(gateway.plugin);
    let cabDownloads = 0;
    app.addHook('onResponse', async (req) => {
      if (req.url.endsWith('.cab')) cabDownloads++;
    });
    const serverUrl = await app.listen({ port: 0, host: '127.0.0.1' });

    const reported = new Set<string>();
    const allReported = new Promise<void>((done) =>
      bus.on('event', (e: GatewayEvent) => {
        if (e.type === 'host-report') reported.add(e.host);
        if (reported.size === scenario.hosts.length) done();
      }),
    );
    const fleet = await startLabFleet({
      scenario,
      dir,
      serverUrl,
      enrollToken: encodeEnrollToken({ secret: SECRET, fingerprint: null }),
      upstreamUrl,
      payloads,
      labRootPem: await readFile(cab.rootPemFile, 'utf8'),
      ...(process.env.FLEET_DEBUG ? { log: (m: string) => console.error(m) } : {}),
    });
    try {
      await allReported;
      assert.equal(store.hosts.size, scenario.hosts.length);
      for (const host of scenario.hosts) {
        const record = [...store.hosts.values()].find((h) => h.name === host.name)!;
        const inv = await store.inventory(record.id);
        const serverNeeded = [...inv.updates.values()]
          .filter((u) => u.applicability === 'needed')
          .map((u) => u.updateId)
          .sort();
        const labNeeded = applicableUpdates(scenario, host, (await readHostState(join(dir, 'hosts', host.name)))!)
          .map((e) => e.updateId.toLowerCase())
          .sort();
        assert.deepEqual(serverNeeded, labNeeded, `${host.name}: the server's applicable set is the lab's`);
        assert.ok(labNeeded.length > 0 || host.installed.length > 0, `${host.name} has something to compare`);
      }
      assert.ok(cabDownloads <= scenario.hosts.length, 'each agent fetched the cab at most once');

      // Nothing was installed: no rule allowed anything.
      for (const host of scenario.hosts)
        assert.deepEqual(
          Object.keys((await readHostState(join(dir, 'hosts', host.name)))!.installed).sort(),
          [...host.installed].sort(),
        );

      // Allow the security updates, then push an install to two connected hosts.
      allowed = scenario.catalog
        .filter((e) => e.classification === 'Security Updates')
        .map((e) => e.updateId.toLowerCase());
      const targets = [...store.hosts.values()].filter((h) => h.name === 'web03' || h.name === 'web04');
      for (const t of targets) while (!gateway.isConnected(t.id)) await new Promise((r) => setTimeout(r, 10));
      const action = store.createAction(
        'install',
        targets.map((t) => t.id),
        new Date(),
      );
      const received = targets.map((t) =>
        waitForEvent(
          bus,
          (e) =>
            e.type === 'action-progress' &&
            e.actionId === action.id &&
            e.hostId === t.id &&
            e.progress.state === 'received',
          2_000,
          `${t.name} to receive the action`,
        ),
      );
      const finished = targets.map((t) =>
        waitForEvent(
          bus,
          (e) =>
            e.type === 'action-progress' &&
            e.actionId === action.id &&
            e.hostId === t.id &&
            (e.progress.state === 'succeeded' || e.progress.state === 'failed'),
          60_000,
          `${t.name} to finish`,
        ),
      );
      const started = performance.now();
      gateway.wake(targets.map((t) => t.id));
      await Promise.all(received);
      assert.ok(performance.now() - started < 2_000, 'every target received the action within 2 s');
      await Promise.all(finished);
      const states = action.progress;
      for (const t of targets) {
        const list = states.get(t.id)!.map((p) => p.state);
        assert.equal(list[0], 'received');
        assert.ok(list.includes('running'), `${t.name} reported running`);
      }
      for (const t of targets) {
        const host = scenario.hostByName.get(t.name)!;
        const installed = Object.keys((await readHostState(join(dir, 'hosts', t.name)))!.installed);
        assert.ok(installed.length > host.installed.length, `${t.name} installed something`);
        assert.ok(
          installed.every(
            (k) => host.installed.includes(k) || allowed.includes(scenario.byKey.get(k)!.updateId.toLowerCase()),
          ),
          `${t.name} installed only allowed updates`,
        );
      }
    } finally {
      await fleet.close();
      gateway.close();
      await app.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
