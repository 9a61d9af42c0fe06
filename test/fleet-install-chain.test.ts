/**
 * An operator's install action goes through update chains (issue 7): the server (SQLite) and a lab
 * fleet of real agent services over real HTTP on one controllable clock. Each host needs only the
 * servicing stack update at first; the cumulative update becomes applicable once the SSU is in,
 * and .NET once the CU's reboot is done. One rule allows the "Security Updates" classification; no
 * host had reported the CU or .NET when the rule was written, and the ring's maintenance window
 * never opens, so nothing but the action installs anything.
 *
 *  - chain01: the one action installs SSU → CU → reboot → .NET, in that order, and ends succeeded
 *    with the host compliant; its passes show in GET /api/v1/actions/{id} and on /api/v1/events;
 *  - fail01: the CU fails in pass 2: the action ends failed with the HRESULT, the SSU stays in;
 *  - forbid01: a rule forbids the CU on this host: the chain stops after the SSU and the action
 *    still succeeds (nothing allowed is left).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { ManualClock } from '../src/engine/manual-clock.ts';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { generateCatalog } from '../src/lab/catalog-gen.ts';
import { sqliteCatalogWriter } from '../src/store/catalog-repo.ts';
import { startLabFleet } from '../src/lab/fleet.ts';
import { readHostState } from '../src/lab/host-state.ts';
import { startPayloadUpstream } from './support/payload-upstream.ts';
import { ioQuiet } from './support/io-quiet.ts';
import { parseScenario } from '../src/lab/scenario.ts';
import { appDeps } from '../src/server/app.ts';
import { enrollToken, testApp } from './support/server-harness.ts';

const SCENARIO = `
timeScale: 1
payloadScale: 0.00001
catalog:
  - { key: ssu, kb: 5060001, title: Servicing Stack Update (KB5060001), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: never, installSeconds: 300, released: 2026-02-10 }
  - { key: cu, kb: 5060002, title: Cumulative Update (KB5060002), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: always, installSeconds: 1800, released: 2026-02-10, requires: [ssu] }
  - { key: dotnet, kb: 5060003, title: .NET Cumulative Update (KB5060003), classification: Security Updates, severity: Important, products: [Windows Server 2022], reboot: never, installSeconds: 600, released: 2026-02-10, requires: [cu] }
hosts:
  - { name: chain01, product: Windows Server 2022, rebootSeconds: 300 }
  - { name: fail01, product: Windows Server 2022, rebootSeconds: 300, faults: [{ update: cu, failAlways: true, hresult: "0x80070643" }] }
  - { name: forbid01, product: Windows Server 2022, rebootSeconds: 300 }
`;
const START = new Date('2026-03-03T21:00:00Z');
/** Never open during the test (Sunday 03:00; the test stays on a Tuesday night). */
const CLOSED_WINDOW = { weekdays: ['sun'], start: '03:00', durationMinutes: 60, timeZone: 'UTC' };
/** Simulated time stands still until real I/O has been quiet this long (ms). */
const QUIET_MS = 5;

/** Polls `check` (real time) until it yields a value; fails after `ms` saying what was awaited and what was seen. */
async function until<T>(check: () => Promise<T | undefined>, ms: number, what: string, seen: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${seen()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface ActionDetail {
  state: string;
  hosts: { host: string; state: string; phase: string | null; hresult: string | null; message: string | null }[];
}

test(
  'an install action goes through SSU → CU → reboot → .NET, stops failed on a failed CU, and succeeds when the CU is forbidden',
  { timeout: 120_000 },
  async () => {
    const clock = new ManualClock(START);
    const t = await testApp('sqlite', { now: () => clock.now() });
    const dir = await mkdtemp(join(tmpdir(), 'patchline-chain-'));
    const scenario = parseScenario(SCENARIO, 'chain.yaml');
    // Real I/O holds the simulated time still: payload downloads, requests to the server, file I/O.
    const io = ioQuiet(QUIET_MS);
    const upstream = await startPayloadUpstream(scenario, { onResponse: io.track });
    const { payloads } = upstream;
    const upstreamUrl = upstream.url;
    // The server knows the updates' classifications from the lab's signed catalog (the agents scan
    // online: the rule must match the CU by its catalog facts, which no report carries).
    const cab = await generateCatalog(
      scenario,
      { out: join(dir, 'wsusscn2.cab'), upstreamUrl, rootDir: join(dir, 'root') },
      defaultCatalogPacker(),
    );
    await importCatalogFile(cab.out, sqliteCatalogWriter(t.store.sqlite!), defaultCabToolkit(), {
      trustPems: [await readFile(cab.rootPemFile, 'utf8')],
    });
    const serverUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
    // Requests to the server count too, except the ones that are held open on purpose.
    io.watchServer(t.app.server);
    const api = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${serverUrl}${url}`, {
        method,
        headers: {
          authorization: t.bearer.admin,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const ok = async (method: string, url: string, body?: unknown) => {
      const r = await api(method, url, body);
      assert.ok(r.status < 300, `${method} ${url} → ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };

    await ok('PUT', '/api/v1/rings/lab', {
      position: 0,
      members: ['*'],
      defaultAllow: false,
      rebootPolicy: 'if-required',
      maintenanceWindows: [CLOSED_WINDOW],
    });
    await ok('POST', '/api/v1/rules', { action: 'allow', classifications: ['Security Updates'] });
    await ok('POST', '/api/v1/rules', { action: 'forbid', kbs: ['5060002'], hosts: ['forbid01'] });

    const gateway = appDeps(t.app).agents!;
    const fleet = await startLabFleet({
      scenario,
      dir,
      serverUrl,
      enrollToken: await enrollToken(t, { ring: 'lab' }),
      upstreamUrl,
      payloads,
      labRootPem: '',
      clock,
      random: () => 0.5,
      checkinWaitSeconds: 1,
      ...(process.env.FLEET_DEBUG ? { log: (m: string) => console.error(`${clock.now().toISOString()} ${m}`) } : {}),
    });
    const installed = async (host: string) => (await readHostState(join(dir, 'hosts', host)))!.installed;
    const stream = await fetch(`${serverUrl}/api/v1/events`, { headers: { authorization: t.bearer.viewer } });
    const reader = stream.body!.getReader();
    let events = '';
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        events += new TextDecoder().decode(value);
      }
    })();
    let auto: { stop(): Promise<void> } | undefined;
    try {
      type Hosts = { hosts: { name: string; lastScanAt: string | null; counts: Record<string, number> }[] };
      let hosts: Hosts = { hosts: [] };
      await until(
        async () => {
          hosts = (await api('GET', '/api/v1/hosts')).body as Hosts;
          return hosts.hosts.length === 3 && hosts.hosts.every((h) => h.lastScanAt) ? true : undefined;
        },
        30_000,
        'every host to report its scan',
        () => JSON.stringify(hosts.hosts),
      );
      const ids = new Map(
        (await t.store.db.selectFrom('hosts').select(['id', 'name']).execute()).map((h) => [h.name, h.id]),
      );
      await until(
        async () => ([...ids.values()].every((id) => gateway.isConnected(id)) ? true : undefined),
        10_000,
        'every agent to hold a check-in',
        () => [...ids].filter(([, id]) => !gateway.isConnected(id)).join(', '),
      );
      for (const name of ids.keys())
        assert.deepEqual(Object.keys(await installed(name)), [], `${name}: nothing installed before the action`);

      const actions = new Map<string, string>();
      for (const host of ['chain01', 'fail01', 'forbid01'])
        actions.set(host, (await ok('POST', '/api/v1/actions', { action: 'install', hosts: [host] })).id as string);
      auto = clock.autoAdvance({ busy: io.busy });
      const details = new Map<string, ActionDetail>();
      for (const [host, id] of actions) {
        details.set(
          host,
          await until(
            async () => {
              const d = (await api('GET', `/api/v1/actions/${id}`)).body as ActionDetail;
              details.set(host, d);
              return d.state === 'done' || d.state === 'failed' ? d : undefined;
            },
            60_000,
            `the install action on ${host} to end`,
            () => JSON.stringify(details.get(host)),
          ),
        );
      }

      // chain01: one action, the whole chain, in order, and the host compliant.
      const chain = details.get('chain01')!;
      assert.equal(chain.state, 'done', JSON.stringify(chain));
      assert.equal(chain.hosts[0]!.state, 'succeeded');
      assert.match(
        chain.hosts[0]!.message ?? '',
        /nothing allowed is left after 3 pass\(es\), 3 update\(s\) installed/,
      );
      const got = await installed('chain01');
      assert.deepEqual(
        Object.entries(got)
          .sort(([, a], [, b]) => a.installedAt.localeCompare(b.installedAt))
          .map(([key]) => key),
        ['ssu', 'cu', 'dotnet'],
        'SSU, then CU, then .NET',
      );
      assert.equal(fleet.hosts.get('chain01')!.reboots, 1, "one reboot: the CU's");
      const chainUpdates = (await ok('GET', '/api/v1/hosts/chain01/updates')).updates as {
        kb: string;
        state: string;
      }[];
      assert.deepEqual(
        chainUpdates.map((u) => `KB${u.kb}:${u.state}`).sort(),
        ['KB5060001:OK', 'KB5060002:OK', 'KB5060003:OK'],
        'the server sees chain01 compliant',
      );
      // The passes were visible live: what each one installed, and the reboot between them.
      const chainId = actions.get('chain01')!;
      for (const text of [
        'pass 1: installing KB5060001',
        'pass 2: installing KB5060002',
        'rebooting (ring reboot policy if-required)',
        'pass 3: installing KB5060003',
      ]) {
        await until(
          async () => (events.includes(`"action":"${chainId}"`) && events.includes(text) ? true : undefined),
          5_000,
          `"${text}" on the event stream`,
          () => events.slice(-2_000),
        );
      }

      // fail01: the CU fails in pass 2; the action says so, with WUA's HRESULT.
      const fail = details.get('fail01')!;
      assert.equal(fail.state, 'failed', JSON.stringify(fail));
      assert.deepEqual([fail.hosts[0]!.state, fail.hosts[0]!.hresult], ['failed', '0x80070643']);
      assert.match(fail.hosts[0]!.message ?? '', /^pass 2: /);
      assert.deepEqual(Object.keys(await installed('fail01')), ['ssu'], 'fail01 kept its SSU, no CU');

      // forbid01: the chain stops at the forbidden CU, and that is success.
      const forbid = details.get('forbid01')!;
      assert.equal(forbid.state, 'done', JSON.stringify(forbid));
      assert.equal(forbid.hosts[0]!.state, 'succeeded');
      assert.match(forbid.hosts[0]!.message ?? '', /nothing allowed is left after 1 pass\(es\)/);
      assert.deepEqual(Object.keys(await installed('forbid01')), ['ssu'], 'forbid01 got the SSU, not the CU');
    } finally {
      await auto?.stop();
      await reader.cancel().catch(() => undefined);
      await fleet.close();
      await t.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
