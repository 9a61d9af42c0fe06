import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyReboot,
  completeReboot,
  initHostDir,
  initialHostState,
  installerBusyAt,
  readBootFile,
  readHostState,
  writeHostState,
} from './host-state.ts';
import { parseScenario } from './scenario.ts';

const scenario = parseScenario(
  `
timeScale: 0.5
catalog:
  - { key: old, title: Old, classification: Updates, products: [P], released: 2026-10-01 }
  - { key: cu, title: CU, classification: Updates, products: [P], released: 2026-11-01, reboot: always }
hosts:
  - { name: plain, product: P, installed: [old] }
  - { name: faulty, product: P, faults: [{ pendingRebootAtStart: true }, { installerBusySeconds: 10 }] }
`,
  'state.yaml',
);
const host = (name: string) => {
  const h = scenario.hostByName.get(name);
  assert.ok(h);
  return h;
};
const T0 = new Date('2026-11-21T06:00:00.000Z');

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-host-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('host state on disk', () => {
  it('initHostDir creates the initial state and a first boot, then keeps what is there', () =>
    withDir(async (dir) => {
      const state = await initHostDir(dir, host('plain'), T0, scenario.timeScale);
      assert.deepEqual(Object.keys(state.installed), ['old']);
      assert.equal(state.installed.old?.rebootDone, true);
      assert.equal(state.rebootPending, false);
      assert.deepEqual(await readBootFile(dir), { bootId: T0.toISOString(), bootCount: 1 });
      await writeHostState(dir, { ...state, downloaded: ['cu'] });
      const again = await initHostDir(dir, host('plain'), new Date(T0.getTime() + 1000), scenario.timeScale);
      assert.deepEqual(again.downloaded, ['cu']);
      assert.deepEqual((await readBootFile(dir))?.bootId, T0.toISOString());
      // Atomic writes leave no temp files behind.
      assert.deepEqual((await readdir(dir)).sort(), ['boot.json', 'state.json']);
    }));

  it('pendingRebootAtStart and installerBusySeconds (scaled) shape the first state', () =>
    withDir(async (dir) => {
      const state = await initHostDir(dir, host('faulty'), T0, scenario.timeScale);
      assert.equal(state.rebootPending, true);
      assert.equal(installerBusyAt(state, new Date(T0.getTime() + 4999)), true);
      assert.equal(installerBusyAt(state, new Date(T0.getTime() + 5000)), false);
    }));

  it('completeReboot finishes pending reboots and re-arms the busy installer', () =>
    withDir(async (dir) => {
      const state = await initHostDir(dir, host('faulty'), T0, scenario.timeScale);
      await writeHostState(dir, {
        ...state,
        installed: { cu: { installedAt: T0.toISOString(), rebootDone: false } },
        rebootPendingFor: ['cu'],
      });
      const later = new Date(T0.getTime() + 60_000);
      const after = await completeReboot(dir, later);
      assert.ok(after);
      assert.equal(after.rebootPending, false);
      assert.deepEqual(after.rebootPendingFor, []);
      assert.equal(after.installed.cu?.rebootDone, true);
      assert.equal(installerBusyAt(after, new Date(later.getTime() + 1000)), true);
      assert.deepEqual(await readHostState(dir), after);
    }));

  it('applyReboot leaves a host without the busy fault idle', () => {
    const state = applyReboot({ ...initialHostState(host('plain'), T0, scenario.timeScale), rebootPending: true }, T0);
    assert.equal(state.installerBusyUntil, null);
    assert.equal(state.rebootPending, false);
  });

  it('completeReboot on a host without state does nothing; a corrupt state is an error', () =>
    withDir(async (dir) => {
      assert.equal(await completeReboot(dir, T0), null);
      await writeFile(join(dir, 'state.json'), '{"version": 99}');
      await assert.rejects(readHostState(dir), /not a Patchline lab host state/);
      assert.equal(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')).version, 99);
    }));
});
