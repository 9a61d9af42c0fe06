/**
 * Maintenance windows and install at shutdown, end to end (behaviour 7), and an operator's install
 * action through the API (behaviour 8): the server (SQLite) and a lab fleet of real agent services
 * over real HTTP, on one controllable clock shared by the server, the agents, the simulated WUA
 * and the virtual reboots. Hours of patching run in seconds.
 *
 *  - ring `windowed` (win01, win02): Tuesdays 22:00–22:45 and 23:30–01:30 UTC; its three updates
 *    take 60 minutes, so the first window closes in the middle: nothing is installed before the
 *    first window or between the two, and what was left goes in during the second;
 *  - ring `shutdown` (late01): a window that never opens during the test, installAtShutdown: the
 *    updates go in when the lab host shuts down, not before;
 *  - ring `ops` (ops01): same closed window; an operator's install action runs at once anyway,
 *    reaches the agent within 2 s, and its progress shows in GET /api/v1/actions/{id} and on the
 *    event stream (a real socket).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/engine/manual-clock.ts';
import { startLabFleet } from '../src/lab/fleet.ts';
import { readHostState } from '../src/lab/host-state.ts';
import { startPayloadUpstream } from './support/payload-upstream.ts';
import { ioQuiet } from './support/io-quiet.ts';
import { parseScenario } from '../src/lab/scenario.ts';
import { createEnrollToken } from '../src/server/accounts.ts';
import { appDeps } from '../src/server/app.ts';
import { testApp, TEST_ACTOR } from './support/server-harness.ts';

const SCENARIO = `
timeScale: 1
payloadScale: 0.00001
catalog:
  - { key: ssu, kb: 5050001, title: Servicing Stack Update (KB5050001), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: never, installSeconds: 600, released: 2026-02-10 }
  - { key: cu, kb: 5050002, title: Cumulative Update (KB5050002), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: always, installSeconds: 1800, released: 2026-02-10 }
  - { key: dotnet, kb: 5050003, title: .NET Cumulative Update (KB5050003), classification: Security Updates, severity: Important, products: [Windows Server 2022], reboot: never, installSeconds: 1200, released: 2026-02-10 }
hosts:
  - { name: "win{01..02}", product: Windows Server 2022, rebootSeconds: 300 }
  - { name: late01, product: Windows Server 2022, rebootSeconds: 300 }
  - { name: ops01, product: Windows Server 2022, rebootSeconds: 300 }
`;
/** Tuesday 3 March 2026, 21:00 UTC: an hour before the first window. */
const START = new Date('2026-03-03T21:00:00Z');
/** The first window is too short for the 60 minutes of installs; the next one has room to spare. */
const WINDOWS = [
  { start: Date.parse('2026-03-03T22:00:00Z'), end: Date.parse('2026-03-03T22:45:00Z') },
  { start: Date.parse('2026-03-03T23:30:00Z'), end: Date.parse('2026-03-04T01:30:00Z') },
];
/** Simulated time stands still until real I/O has been quiet this long (ms). */
const QUIET_MS = 5;
/** Never open during the test (Sunday). */
const CLOSED_WINDOW = { weekdays: ['sun'], start: '03:00', durationMinutes: 60, timeZone: 'UTC' };

/** Polls `check` (real time) until it holds; fails after `ms` saying what was awaited. */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(
  'maintenance windows, install at shutdown and an operator action, with the lab fleet on one clock',
  { timeout: 180_000 },
  async () => {
    const clock = new ManualClock(START);
    const t = await testApp('sqlite', { now: () => clock.now() });
    const dir = await mkdtemp(join(tmpdir(), 'patchline-windows-'));
    const scenario = parseScenario(SCENARIO, 'windows.yaml');
    // Real I/O holds the simulated time still: payload downloads, requests to the server, file I/O.
    const io = ioQuiet(QUIET_MS);
    const upstream = await startPayloadUpstream(scenario, { onResponse: io.track });
    const { payloads } = upstream;
    const upstreamUrl = upstream.url;
    const serverUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
    // Requests to the server count too, except the ones that are held open on purpose.
    io.watchServer(t.app.server);
    const api = async (
      method: string,
      url: string,
      body?: unknown,
      role: 'viewer' | 'operator' | 'admin' = 'admin',
    ) => {
      const res = await fetch(`${serverUrl}${url}`, {
        method,
        headers: {
          authorization: t.bearer[role],
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };

    const rings: [string, unknown][] = [
      [
        'windowed',
        {
          position: 0,
          members: ['win*'],
          defaultAllow: true,
          rebootPolicy: 'if-required',
          maintenanceWindows: [
            { weekdays: ['tue'], start: '22:00', durationMinutes: 45, timeZone: 'UTC' },
            { weekdays: ['tue'], start: '23:30', durationMinutes: 120, timeZone: 'UTC' },
          ],
        },
      ],
      [
        'shutdown',
        {
          position: 1,
          members: ['late*'],
          defaultAllow: true,
          installAtShutdown: true,
          maintenanceWindows: [CLOSED_WINDOW],
        },
      ],
      [
        'ops',
        {
          position: 2,
          members: ['ops*'],
          defaultAllow: true,
          rebootPolicy: 'never',
          maintenanceWindows: [CLOSED_WINDOW],
        },
      ],
    ];
    for (const [name, body] of rings) {
      const put = await api('PUT', `/api/v1/rings/${name}`, body);
      assert.equal(put.status, 200, JSON.stringify(put.body));
    }
    // The token's ring does not exist: each host lands in the ring whose members match it.
    const et = await createEnrollToken(t.deps, TEST_ACTOR, {
      ring: 'lab',
      expiresInHours: 24 * 30,
      singleUse: false,
      fingerprint: null,
    });

    const gateway = appDeps(t.app).agents!;
    const fleet = await startLabFleet({
      scenario,
      dir,
      serverUrl,
      enrollToken: et.token,
      upstreamUrl,
      payloads,
      labRootPem: '',
      clock,
      random: () => 0.5,
      checkinWaitSeconds: 1,
      ...(process.env.FLEET_DEBUG ? { log: (m: string) => console.error(`${clock.now().toISOString()} ${m}`) } : {}),
    });
    const installed = async (host: string) => (await readHostState(join(dir, 'hosts', host)))!.installed;
    const hostIds = async () =>
      new Map((await t.store.db.selectFrom('hosts').select(['id', 'name']).execute()).map((h) => [h.name, h.id]));
    let auto: { stop(): Promise<void> } | undefined;
    try {
      // Every host scanned and reported; then two rounds of wake-ups make sure each agent holds the
      // policy computed from its report (allowed updates, windows) before time starts to move.
      await until(
        async () =>
          (await api('GET', '/api/v1/hosts', undefined, 'viewer')).body.hosts.filter(
            (h: { lastScanAt: string | null; counts: { MISSING: number; PENDING: number } }) =>
              h.lastScanAt && h.counts.MISSING + h.counts.PENDING === 3,
          ).length === 4,
        30_000,
        'every host to report its three missing updates',
      );
      const ids = await hostIds();
      for (let round = 0; round < 2; round++) {
        await until(
          () => [...ids.values()].every((id) => gateway.isConnected(id)),
          10_000,
          'every agent to hold a check-in',
        );
        gateway.wake(ids.values());
        await until(
          () => [...ids.values()].every((id) => gateway.isConnected(id)),
          10_000,
          'every agent to check in again after the wake-up',
        );
      }

      // Behaviour 8: outside any window, an operator's install reaches ops01 within 2 s and runs now.
      const stream = await fetch(`${serverUrl}/api/v1/events`, { headers: { authorization: t.bearer.viewer } });
      const reader = stream.body!.getReader();
      let seen = '';
      const readUntil = async (text: string, ms: number): Promise<void> => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new Error(`timed out after ${ms} ms waiting for ${text} on the event stream`)),
              ms,
            )),
        );
        try {
          while (!seen.includes(text)) {
            const { value, done } = await Promise.race([reader.read(), late]);
            if (done) throw new Error(`the event stream ended before ${text}`);
            seen += new TextDecoder().decode(value);
          }
        } finally {
          clearTimeout(timer);
        }
      };
      const sent = performance.now();
      const created = await api('POST', '/api/v1/actions', { action: 'install', hosts: ['ops01'] }, 'operator');
      assert.equal(created.status, 202, JSON.stringify(created.body));
      const actionId = created.body.id as string;
      await until(
        async () =>
          (await api('GET', `/api/v1/actions/${actionId}`, undefined, 'viewer')).body.hosts[0].state !== 'queued',
        2_000,
        'ops01 to receive the install action (2 s)',
      );
      assert.ok(performance.now() - sent < 2_000, 'the action reached the agent within 2 s');
      await readUntil(`"action":"${actionId}","host":"ops01","state":"received"`, 5_000);

      // Time moves now: I/O in flight holds it still, so each step of the simulation sees its own I/O land.
      auto = clock.autoAdvance({ busy: io.busy });
      await until(
        async () => (await api('GET', `/api/v1/actions/${actionId}`, undefined, 'viewer')).body.state === 'done',
        60_000,
        'the install action on ops01 to finish',
      );
      const detail = (await api('GET', `/api/v1/actions/${actionId}`, undefined, 'viewer')).body;
      assert.deepEqual(
        detail.hosts.map((h: { host: string; state: string }) => [h.host, h.state]),
        [['ops01', 'succeeded']],
      );
      await readUntil(`"action":"${actionId}","host":"ops01","state":"running"`, 5_000);
      await readUntil(`"action":"${actionId}","host":"ops01","state":"succeeded"`, 5_000);
      await reader.cancel();
      assert.deepEqual(
        Object.keys(await installed('ops01')).sort(),
        ['cu', 'dotnet', 'ssu'],
        'the operator action installed outside the window',
      );

      // Behaviour 7: run past the second window.
      const afterWindows = WINDOWS[1]!.end + 30 * 60_000;
      await until(
        () => clock.now().getTime() >= afterWindows,
        120_000,
        `the clock to pass ${new Date(afterWindows).toISOString()}`,
      );
      for (const host of ['win01', 'win02']) {
        const got = await installed(host);
        assert.deepEqual(
          Object.keys(got).sort(),
          ['cu', 'dotnet', 'ssu'],
          `${host}: everything went in over the two windows`,
        );
        const windowOf = (key: string): number => {
          const end = Date.parse(got[key]!.installedAt);
          const start = end - scenario.byKey.get(key)!.installSeconds * 1_000;
          const i = WINDOWS.findIndex((w) => start >= w.start && end <= w.end);
          assert.ok(
            i >= 0,
            `${host}: ${key} ran ${new Date(start).toISOString()}–${new Date(end).toISOString()}, outside both windows`,
          );
          return i;
        };
        const used = new Set(['ssu', 'cu', 'dotnet'].map(windowOf));
        assert.deepEqual(
          [...used].sort(),
          [0, 1],
          `${host}: the first window ran out; the rest went in during the second`,
        );
      }
      // late01 installed nothing in all that time: its window never opened.
      assert.deepEqual(Object.keys(await installed('late01')), [], 'late01 installed nothing outside its window');

      // Install at shutdown: the shutdown event installs what is allowed before the host goes down.
      await fleet.shutdown('late01');
      assert.deepEqual(
        Object.keys(await installed('late01')).sort(),
        ['cu', 'dotnet', 'ssu'],
        'late01 installed its updates at shutdown',
      );
      // And the server heard it before the host went down.
      await until(
        async () =>
          (await api('GET', '/api/v1/hosts?q=late01', undefined, 'viewer')).body.hosts[0].counts.MISSING === 0,
        10_000,
        "late01's report after the shutdown install",
      );
    } finally {
      await auto?.stop();
      await fleet.close();
      await t.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
