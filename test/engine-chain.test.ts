/** Engine: a dependency chain is patched in the fewest cycles the reboots allow. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRun } from '../src/engine/run.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { CHAIN, CU, DEFENDER, NET, SSU, never, runOptions, testEnv } from './engine-helpers.ts';

test('SSU → CU → .NET chain: 3 cycles, 3 reboots, nothing left applicable, exit 0', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [...CHAIN, DEFENDER] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'compliant', host.message ?? '');
    // Each link needs the previous one committed by a reboot: 3 cycles; the 4th scan would be empty
    // but the 3rd cycle's .NET needs a reboot too, so a 4th cycle confirms nothing is left.
    assert.equal(host.cycles, 4);
    assert.equal(host.reboots, 3);
    assert.deepEqual(fleet.host('web01').applicable(), []);
    for (const u of [SSU, CU, NET, DEFENDER]) {
      assert.equal(fleet.installs('web01', u.id), 1, `KB${u.kb} installed exactly once`);
      const r = host.updates.find((x) => x.updateId === u.id);
      assert.equal(r?.result, 'installed');
      assert.equal(r?.attempts, 1);
    }
    assert.equal(result.report.run.outcome, 'succeeded');
    assert.ok(env.events.some((e) => e.kind === 'host-back'), 'the log says when the host came back');
    assert.equal(env.events.at(-1)?.kind, 'run-finished');
  } finally {
    await env.cleanup();
  }
});
