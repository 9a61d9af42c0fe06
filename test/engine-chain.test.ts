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
    const before = process.getActiveResourcesInfo();
    const timersBefore = before.filter((r) => r === 'Timeout').length;
    const serversBefore = before.filter((r) => r === 'TCPServerWrap').length;
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    await fleet.shutdown();
    // Nothing left behind: the callback server is closed and no engine timer is pending. (libuv
    // releases a closed handle on a later turn of the loop: wait for that, bounded.)
    const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    for (let i = 0; i < 100 && servers() > serversBefore; i++) await new Promise((r) => setTimeout(r, 10));
    const resources = process.getActiveResourcesInfo();
    assert.equal(
      resources.filter((r) => r === 'TCPServerWrap').length,
      serversBefore,
      `still listening: ${resources.join(', ')}`,
    );
    assert.ok(resources.filter((r) => r === 'Timeout').length <= timersBefore, `timers left: ${resources.join(', ')}`);
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
    assert.ok(
      env.events.some((e) => e.kind === 'host-back'),
      'the log says when the host came back',
    );
    assert.equal(env.events.at(-1)?.kind, 'run-finished');
  } finally {
    await env.cleanup();
  }
});
