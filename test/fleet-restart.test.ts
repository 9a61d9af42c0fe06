/**
 * Agents survive their server going away: the gateway's process is cut off mid-stream (every
 * connection dropped, as a SIGKILL would), a scan made while it is down stays queued on the
 * agent's disk, and once a server is back on the same address every agent reconnects (held
 * check-in again) and the queued report arrives — nothing the agent had is lost, nothing the
 * server had acknowledged is sent twice to effect. The store outlives the process here as the
 * server's SQLite file would (the in-memory gateway store is kept across the restart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { encodeEnrollToken, tokenSecretHash, type AgentPolicy } from '../src/domain/agent-protocol.ts';
import { createAgentGateway, type AgentGateway, type GatewayEvent } from '../src/server/gateway/gateway.ts';
import { MemoryGatewayStore } from '../src/server/gateway/store.ts';
import { startLabFleet } from '../src/lab/fleet.ts';
import { startPayloadUpstream } from './support/payload-upstream.ts';
import { loadScenario } from '../src/lab/scenario.ts';

const SCENARIO = resolve(import.meta.dirname, '../examples/lab/patch-night.yaml');
const SECRET = 'restart-secret-0123456789';
const POLICY: AgentPolicy = {
  ring: 'pilot',
  scanIntervalSeconds: 3600,
  scanSource: 'online',
  windows: [],
  reboot: 'never',
  installAtShutdown: false,
  directDownload: true,
  allowedUpdateIds: [],
};

function until(
  bus: EventEmitter,
  match: (e: GatewayEvent) => boolean,
  what: string,
  ms = 30_000,
): Promise<GatewayEvent> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), ms);
    const on = (e: GatewayEvent): void => {
      if (!match(e)) return;
      clearTimeout(timer);
      bus.off('event', on);
      done(e);
    };
    bus.on('event', on);
  });
}

async function startServer(
  store: MemoryGatewayStore,
  bus: EventEmitter,
  port: number,
): Promise<{ app: FastifyInstance; gateway: AgentGateway; url: string }> {
  const gateway = createAgentGateway({
    store,
    now: () => new Date(),
    policyFor: async () => POLICY,
    catalog: async () => null,
    content: async () => null,
    publish: (e) => bus.emit('event', e),
  });
  const app = Fastify();
  await app.register(gateway.plugin);
  const url = await app.listen({ port, host: '127.0.0.1' });
  return { app, gateway, url };
}

test(
  'agents reconnect after the server is cut off and restarted; a report queued meanwhile arrives, nothing lost',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-restart-'));
    const scenario = await loadScenario(SCENARIO);
    const upstream = await startPayloadUpstream(scenario);
    const { payloads } = upstream;
    const store = new MemoryGatewayStore();
    store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
    const bus = new EventEmitter();
    let server = await startServer(store, bus, 0);
    const port = Number(new URL(server.url).port);
    const names = ['web01', 'sql01'];
    const firstReports = Promise.all(
      names.map((n) => until(bus, (e) => e.type === 'host-report' && e.host === n, `${n}'s first report`)),
    );
    const fleet = await startLabFleet({
      scenario,
      dir,
      serverUrl: server.url,
      enrollToken: encodeEnrollToken({ secret: SECRET, fingerprint: null }),
      hosts: names,
      upstreamUrl: upstream.url,
      payloads,
      labRootPem: '',
      random: () => 0.5,
    });
    try {
      await firstReports;
      const web01 = [...store.hosts.values()].find((h) => h.name === 'web01')!;
      assert.equal(web01.ackedSeq, 1);

      // Cut the server off as a kill would: every socket (held check-ins included) drops at once.
      server.app.server.closeAllConnections();
      server.gateway.close();
      await server.app.close();

      // web01 scans while the server is down: the report waits on its disk.
      const host = fleet.hosts.get('web01')!;
      await host.service!.scanAndReport(AbortSignal.timeout(30_000));
      const waitUntilQueued = async (): Promise<void> => {
        for (;;) {
          const pending = JSON.parse(
            await readFile(join(host.state.dir, 'pending-report.json'), 'utf8').catch(() => 'null'),
          );
          if (pending?.report.seq === 2) return;
          await new Promise((r) => setImmediate(r));
        }
      };
      await waitUntilQueued();
      assert.equal(store.hosts.get(web01.id)!.ackedSeq, 1, 'nothing reached the server while it was down');

      const queuedArrives = until(
        bus,
        (e) => e.type === 'host-report' && e.host === 'web01' && e.seq === 2,
        'the queued report after the restart',
      );
      server = await startServer(store, bus, port);
      await queuedArrives;
      // Every agent is back on a held check-in.
      for (;;) {
        if ([...store.hosts.keys()].every((id) => server.gateway.isConnected(id))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(store.hosts.get(web01.id)!.ackedSeq, 2);
      assert.equal(
        JSON.parse(await readFile(join(host.state.dir, 'pending-report.json'), 'utf8')),
        null,
        'the agent knows its report was acknowledged',
      );
      // The delta on the acknowledged base left the server with the agent's whole inventory.
      const acked = JSON.parse(await readFile(join(host.state.dir, 'acked-inventory.json'), 'utf8')) as {
        seq: number;
        updates: { updateId: string }[];
      };
      assert.deepEqual(
        [...(await store.inventory(web01.id)).updates.keys()].sort(),
        acked.updates.map((u) => u.updateId).sort(),
      );
    } finally {
      await fleet.close();
      server.gateway.close();
      await server.app.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
