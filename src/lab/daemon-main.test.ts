/**
 * The detached lab daemon as the connector uses it: `ensureLabDaemon` starts `patchline lab daemon`
 * in its own process group and a second call finds it again; a daemon for another scenario is
 * refused; `stopLabDaemon` stops it; an idle daemon stops on its own; the lab transport in
 * process mode talks to it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PatchlineError } from '../domain/errors.ts';
import { ensureLabDaemon, openLabTransport, stopLabDaemon } from './daemon-main.ts';
import { readDaemonFile } from './daemon.ts';

const SCENARIO = `
timeScale: 0.05
catalog:
  - key: cu-2026-11
    kb: 5044445
    title: 2026-11 Cumulative Update for Windows Server 2022
    classification: Security Updates
    products: [Windows Server 2022]
    released: 2026-11-11
hosts:
  - name: app{01..02}
    product: Windows Server 2022
    rebootSeconds: 2
`;

const WAIT_TIMEOUT_MS = 15_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<void> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('detached lab daemon', () => {
  let dir: string;
  let scenarioPath: string;
  const started: number[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-daemon-main-'));
    scenarioPath = join(dir, 'scenario.yaml');
    await writeFile(scenarioPath, SCENARIO);
  });
  after(async () => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('starts once, is found again, refuses another scenario, and stops', async () => {
    const labDir = join(dir, 'lab');
    const first = await ensureLabDaemon({ scenarioPath, dir: labDir });
    started.push(first.pid);
    assert.equal(first.started, true);
    assert.notEqual(first.pid, process.pid);
    const again = await ensureLabDaemon({ scenarioPath, dir: labDir });
    assert.deepEqual([again.started, again.pid, again.url, again.token], [false, first.pid, first.url, first.token]);

    const other = join(dir, 'other.yaml');
    await writeFile(other, SCENARIO);
    await assert.rejects(
      ensureLabDaemon({ scenarioPath: other, dir: labDir }),
      (error: unknown) => error instanceof PatchlineError && error.code === 'LAB_DIR_IN_USE',
    );

    await assert.rejects(
      openLabTransport({ scenarioPath, dir: labDir, mode: 'inprocess' }).listTargets(),
      (error: unknown) => error instanceof PatchlineError && error.code === 'LAB_DIR_IN_USE',
      'an in-process lab refuses a DIR a detached daemon serves',
    );
    const transport = openLabTransport({ scenarioPath, dir: labDir, mode: 'process' });
    assert.deepEqual(await transport.listTargets(), ['app01', 'app02']);
    assert.equal((await transport.probe('app01', AbortSignal.timeout(WAIT_TIMEOUT_MS))).reachable, true);
    await transport.close();
    assert.ok(alive(first.pid), 'closing the transport leaves the detached daemon for a resumed run');

    assert.equal(await stopLabDaemon(labDir), true);
    await waitUntilGone(first.pid);
    assert.equal(await readDaemonFile(labDir), null, 'daemon.json is removed on a clean stop');
    assert.equal(await stopLabDaemon(labDir), false);
  });

  it('a daemon that crashed is started again by the next transport call, hosts as they were', async () => {
    const labDir = join(dir, 'crash');
    const transport = openLabTransport({ scenarioPath, dir: labDir, mode: 'process' });
    const before = await transport.probe('app02', AbortSignal.timeout(WAIT_TIMEOUT_MS));
    const first = await readDaemonFile(labDir);
    assert.ok(first);
    started.push(first.pid);
    process.kill(first.pid, 'SIGKILL');
    await waitUntilGone(first.pid);
    // The crashed daemon's port refuses: unreachable this time, never an exception.
    assert.equal((await transport.probe('app02', AbortSignal.timeout(WAIT_TIMEOUT_MS))).reachable, false);
    const after = await transport.probe('app02', AbortSignal.timeout(WAIT_TIMEOUT_MS));
    const second = await readDaemonFile(labDir);
    assert.ok(second);
    started.push(second.pid);
    assert.notEqual(second.pid, first.pid);
    assert.deepEqual([after.reachable, after.bootId], [true, before.bootId]);
    await transport.close();
    assert.equal(await stopLabDaemon(labDir), true);
  });

  it('stops on its own after the idle period', async () => {
    const labDir = join(dir, 'idle');
    const daemon = await ensureLabDaemon({ scenarioPath, dir: labDir, idleShutdownMs: 1000 });
    started.push(daemon.pid);
    await waitUntilGone(daemon.pid);
  });
});
