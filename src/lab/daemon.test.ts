/**
 * The lab host daemon over real HTTP on 127.0.0.1: auth, status, reboots (new boot id, WUA
 * state completed, servicing after boot), faults (never returns, launch refused), a daemon
 * restarted on the same DIR, and the lab transport's probe/resolveTargets/fetchLog against it.
 * Host behaviour does not depend on the launch mode, so these run in-process (no bundle build);
 * daemon-launch.test.ts runs real launches in both modes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CycleRequest } from '../domain/agent-log.ts';
import { PatchlineError } from '../domain/errors.ts';
import { createLabTransport, labLogFallbackPath, labPipePath } from '../transports/lab.ts';
import { LaunchRefusedError, type HostStatus, type Transport } from '../transports/transport.ts';
import { hostControlToken, startLabDaemon, type LabDaemon } from './daemon.ts';

/** timeScale 0.05: a 2 s reboot takes 100 ms, servicing after boot 1 s. */
const SCENARIO = `
timeScale: 0.05
catalog:
  - key: cu-2026-11
    kb: 5044445
    title: 2026-11 Cumulative Update for Windows Server 2022
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    reboot: always
    released: 2026-11-11
hosts:
  - name: web{01..03}
    product: Windows Server 2022
    rebootSeconds: 2
  - name: pending01
    product: Windows Server 2022
    rebootSeconds: 2
    faults:
      - { pendingRebootAtStart: true }
  - name: lost01
    product: Windows Server 2022
    rebootSeconds: 2
    faults:
      - { neverReturnAfterReboot: 2 }
  - name: locked01
    product: Windows Server 2022
    faults:
      - { launchFails: "0x80070005" }
  - name: slow01
    product: Windows Server 2022
    rebootSeconds: 600
`;

/** Bound on every wait for a condition in these tests. */
const WAIT_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function request(host: string, overrides: Partial<CycleRequest> = {}): CycleRequest {
  return {
    runId: 'run-test',
    host,
    cycle: 1,
    mode: 'scan',
    reboot: 'never',
    filters: {} as CycleRequest['filters'],
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 5,
    logHandoverTimeoutSeconds: 5,
    ...overrides,
  };
}

function transportFor(daemon: LabDaemon): Transport {
  return createLabTransport({
    dir: daemon.dir,
    daemon: { connect: async () => ({ url: daemon.url, token: daemon.token }), close: async () => undefined },
  });
}

const signal = () => AbortSignal.timeout(WAIT_TIMEOUT_MS);

describe('lab daemon', () => {
  let dir: string;
  let scenarioPath: string;
  let daemon: LabDaemon;
  let transport: Transport;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-daemon-'));
    scenarioPath = join(dir, 'scenario.yaml');
    await writeFile(scenarioPath, SCENARIO);
    daemon = await startLabDaemon({ scenarioPath, dir: join(dir, 'lab'), mode: 'inprocess', idleShutdownMs: 0 });
    transport = transportFor(daemon);
  });
  after(async () => {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses host calls without the bearer token and serves them with it', async () => {
    const without = await fetch(`${daemon.url}/hosts/web01/status`);
    assert.equal(without.status, 401);
    const wrong = await fetch(`${daemon.url}/hosts/web01/status`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const withToken = await fetch(`${daemon.url}/hosts/web01/status`, {
      headers: { authorization: `Bearer ${daemon.token}` },
    });
    assert.equal(withToken.status, 200);
    const body = (await withToken.json()) as HostStatus;
    assert.equal(body.reachable, true);
    assert.ok(body.bootId && !Number.isNaN(Date.parse(body.bootId)), 'bootId is an ISO LastBootUpTime');
    const file = JSON.parse(await readFile(join(daemon.dir, 'daemon.json'), 'utf8')) as {
      url: string;
      token: string;
      pid: number;
    };
    assert.deepEqual([file.url, file.token, file.pid], [daemon.url, daemon.token, process.pid]);
  });

  it("an agent's control token reboots its own host only", async () => {
    const control = hostControlToken(daemon.token, 'web02');
    const post = (host: string, path: string) =>
      fetch(`${daemon.url}/hosts/${host}/${path}`, { method: 'POST', headers: { authorization: `Bearer ${control}` } });
    assert.equal((await post('web01', 'reboot')).status, 401);
    assert.equal((await post('web02', 'tasks')).status, 401);
    assert.equal((await fetch(`${daemon.url}/hosts`, { headers: { authorization: `Bearer ${control}` } })).status, 401);
    assert.equal((await transport.probe('web01', signal())).reachable, true);
    assert.equal((await post('web02', 'reboot')).status, 202);
    assert.equal((await transport.probe('web02', signal())).reachable, false);
  });

  it('lists every host of the scenario and rejects unknown names with the known ones', async () => {
    assert.deepEqual(await transport.listTargets(), [
      'web01',
      'web02',
      'web03',
      'pending01',
      'lost01',
      'locked01',
      'slow01',
    ]);
    assert.deepEqual(await transport.resolveTargets(['web02', 'web01']), ['web02', 'web01']);
    await assert.rejects(transport.resolveTargets(['web01', 'db07', 'db08']), (error: unknown) => {
      assert.ok(error instanceof PatchlineError);
      assert.equal(error.code, 'UNKNOWN_HOST');
      assert.equal(error.exitCode, 64);
      assert.match(error.message, /db07, db08/);
      assert.match(error.message, /web01/);
      return true;
    });
  });

  it('reboots: unreachable at once, then back with a new boot id, the pending reboot done, servicing busy a moment', async () => {
    const before = await transport.probe('pending01', signal());
    const stateBefore = JSON.parse(await readFile(join(daemon.hostDir('pending01'), 'state.json'), 'utf8')) as {
      rebootPending: boolean;
    };
    assert.equal(stateBefore.rebootPending, true);
    await transport.reboot('pending01');
    assert.deepEqual(await transport.probe('pending01', signal()), {
      reachable: false,
      bootId: null,
      servicingIdle: false,
    });
    const back = await waitFor('pending01 back', async () => {
      const s = await transport.probe('pending01', signal());
      return s.reachable ? s : undefined;
    });
    assert.notEqual(back.bootId, before.bootId);
    assert.equal(back.servicingIdle, false, 'CBS is still servicing right after boot');
    const state = JSON.parse(await readFile(join(daemon.hostDir('pending01'), 'state.json'), 'utf8')) as {
      rebootPending: boolean;
    };
    assert.equal(state.rebootPending, false);
    const boot = JSON.parse(await readFile(join(daemon.hostDir('pending01'), 'boot.json'), 'utf8')) as {
      bootId: string;
      bootCount: number;
    };
    assert.deepEqual([boot.bootId, boot.bootCount], [back.bootId, 2]);
    await waitFor('servicing idle', async () =>
      (await transport.probe('pending01', signal())).servicingIdle ? true : undefined,
    );
  });

  it('neverReturnAfterReboot: 2 — the first reboot completes, the second never does', async () => {
    await transport.reboot('lost01');
    const first = await waitFor('lost01 back after reboot 1', async () => {
      const s = await transport.probe('lost01', signal());
      return s.reachable ? s : undefined;
    });
    assert.ok(first.bootId);
    // web03 reboots at the same moment with the same reboot time: once it is back (the event
    // waited for), lost01 would be back too if it were ever coming back.
    await Promise.all([transport.reboot('lost01'), transport.reboot('web03')]);
    await waitFor('web03 back after its reboot', async () =>
      (await transport.probe('web03', signal())).reachable ? true : undefined,
    );
    assert.equal((await transport.probe('lost01', signal())).reachable, false);
    const boot = JSON.parse(await readFile(join(daemon.hostDir('lost01'), 'boot.json'), 'utf8')) as { state: string };
    assert.equal(boot.state, 'down');
  });

  it('launchFails: the scheduler refuses with its HRESULT, at once, not a timeout', async () => {
    const started = Date.now();
    await assert.rejects(transport.launch('locked01', request('locked01'), signal()), (error: unknown) => {
      assert.ok(error instanceof LaunchRefusedError);
      assert.equal(error.hresult, '0x80070005');
      assert.equal(error.host, 'locked01');
      assert.match(error.message, /Access is denied/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  it('probe never throws: an unknown host or a dead daemon is unreachable', async () => {
    assert.equal((await transport.probe('nobody', signal())).reachable, false);
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const dead = createLabTransport({
      dir,
      daemon: {
        connect: async () => ({ url: `http://127.0.0.1:${closedPort}`, token: 'x' }),
        close: async () => undefined,
      },
    });
    assert.deepEqual(await dead.probe('web01', signal()), { reachable: false, bootId: null, servicingIdle: false });
  });

  it('fetchLog reads the fallback log file, and returns null when there is none', async () => {
    const req = request('web03', { runId: 'run-fallback', cycle: 2 });
    assert.equal(await transport.fetchLog('web03', req, signal()), null);
    const path = labLogFallbackPath(daemon.dir, req);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, `${JSON.stringify({ seq: 1, at: '2026-11-21T00:00:00.000Z', kind: 'rebooting' })}\n`);
    const events = await transport.fetchLog('web03', req, signal());
    assert.deepEqual(
      events?.map((e) => [e.seq, e.kind]),
      [[1, 'rebooting']],
    );
  });

  it('fetchLog reads the agent socket to EOF when it is there', async () => {
    const req = request('web02', { runId: 'run-socket' });
    const path = labPipePath(daemon.dir, req.runId, 'web02', req.cycle);
    const lines =
      [1, 2].map((seq) => JSON.stringify({ seq, at: '2026-11-21T00:00:00.000Z', kind: 'rebooting' })).join('\n') + '\n';
    const server = createServer((socket) => socket.end(lines));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const events = await transport.fetchLog('web02', req, signal());
      assert.deepEqual(
        events?.map((e) => e.seq),
        [1, 2],
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('lab daemon restarted on the same DIR', () => {
  it('meets every host as it was: mid-reboot hosts finish their reboot, lost hosts stay down, others keep their boot id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-daemon-restart-'));
    try {
      const scenarioPath = join(dir, 'scenario.yaml');
      await writeFile(scenarioPath, SCENARIO);
      const labDir = join(dir, 'lab');
      const first = await startLabDaemon({ scenarioPath, dir: labDir, mode: 'inprocess', idleShutdownMs: 0 });
      const t1 = transportFor(first);
      const web01 = await t1.probe('web01', signal());
      const slowBefore = await t1.probe('slow01', signal());
      await t1.reboot('slow01'); // 600 × 0.05 = 30 s: the daemon stops in the middle
      await t1.reboot('lost01');
      await waitFor('lost01 back', async () => ((await t1.probe('lost01', signal())).reachable ? true : undefined));
      await t1.reboot('lost01'); // the 2nd reboot: never returns
      await first.close();

      const second = await startLabDaemon({ scenarioPath, dir: labDir, mode: 'inprocess', idleShutdownMs: 0 });
      const t2 = transportFor(second);
      assert.equal((await t2.probe('web01', signal())).bootId, web01.bootId);
      assert.equal((await t2.probe('slow01', signal())).reachable, false, 'still rebooting');
      assert.equal((await t2.probe('lost01', signal())).reachable, false);
      await second.close();

      // A daemon started after slow01's reboot time has passed completes that reboot at once.
      const later = () => new Date(Date.now() + 60_000);
      const third = await startLabDaemon({
        scenarioPath,
        dir: labDir,
        mode: 'inprocess',
        idleShutdownMs: 0,
        now: later,
      });
      try {
        const t3 = transportFor(third);
        const slowAfter = await waitFor('slow01 back', async () => {
          const s = await t3.probe('slow01', signal());
          return s.reachable ? s : undefined;
        });
        assert.notEqual(slowAfter.bootId, slowBefore.bootId);
        assert.equal((await t3.probe('lost01', signal())).reachable, false);
        assert.equal((await t3.probe('web01', signal())).bootId, web01.bootId);
      } finally {
        await third.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('lab daemon idle shutdown', () => {
  it('stops by itself after the idle period without host API calls', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-daemon-idle-'));
    try {
      const scenarioPath = join(dir, 'scenario.yaml');
      await writeFile(scenarioPath, SCENARIO);
      const daemon = await startLabDaemon({
        scenarioPath,
        dir: join(dir, 'lab'),
        mode: 'inprocess',
        idleShutdownMs: 300,
      });
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        daemon.closed.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), WAIT_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      assert.equal(stopped, true);
      await assert.rejects(fetch(`${daemon.url}/hosts`, { headers: { authorization: `Bearer ${daemon.token}` } }));
      await assert.rejects(readFile(join(daemon.dir, 'daemon.json')), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
