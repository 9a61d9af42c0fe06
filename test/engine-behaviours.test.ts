/** Engine: the connector behaviours of the issue, end to end against the simulated fleet. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRunLogEvent } from '../src/engine/log-format.ts';
import { startRun } from '../src/engine/run.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { CHAIN, CU, DEFENDER, FAST_TIMING, NET, SSU, never, runOptions, testEnv } from './engine-helpers.ts';

test('pending reboot at start, --reboot if-required: rebooted before installing, then patched', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER], pendingReboot: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'compliant');
    assert.equal(host.reboots, 1);
    assert.equal(fleet.installs('web01', DEFENDER.id), 1);
    // The first cycle installed nothing: the reboot came first.
    assert.deepEqual(
      fleet.host('web01').launches.map((l) => l.cycle),
      [1, 2],
    );
    const reboot = env.events.find((e) => e.kind === 'reboot-started');
    assert.ok(reboot && reboot.kind === 'reboot-started' && /pending/.test(reboot.reason));
  } finally {
    await env.cleanup();
  }
});

test('pending reboot at start, --reboot never: reported pending with what to do, nothing installed, exit 2', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER], pendingReboot: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { reboot: 'never' }), never);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'pending');
    assert.match(host.message ?? '', /reboot was pending.*--reboot never.*Reboot the host/);
    assert.equal(fleet.installs('web01', DEFENDER.id), 0);
    assert.equal(fleet.host('web01').bootCount, 1, 'not rebooted');
    assert.equal(result.exitCode, 2);
  } finally {
    await env.cleanup();
  }
});

test('a failing update is retried after a reboot and succeeds on the second attempt', async () => {
  const env = await testEnv();
  try {
    const flaky = { ...DEFENDER, failTimes: 1, hresult: '0x80242016' };
    const fleet = new FakeFleet([{ name: 'web01', updates: [flaky] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { retries: 1 }), never);
    assert.equal(result.exitCode, 0);
    const u = result.report.hosts[0]!.updates.find((x) => x.updateId === flaky.id)!;
    assert.equal(u.result, 'installed');
    assert.equal(u.attempts, 2);
    assert.equal(result.report.hosts[0]!.reboots, 1, 'the engine rebooted before the retry');
    const rb = env.events.find((e) => e.kind === 'reboot-started');
    assert.ok(rb && rb.kind === 'reboot-started' && rb.by === 'engine');
  } finally {
    await env.cleanup();
  }
});

test('an update failing beyond --retries is reported with HRESULT, name and meaning; the rest is installed; exit 2', async () => {
  const env = await testEnv();
  try {
    const broken = { ...CU, requires: [], failTimes: 99, hresult: '0x80242016' };
    const fleet = new FakeFleet([{ name: 'web01', updates: [SSU, broken, DEFENDER] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { retries: 2 }), never);
    assert.equal(result.exitCode, 2);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'failed');
    const u = host.updates.find((x) => x.updateId === broken.id)!;
    assert.equal(u.result, 'failed');
    assert.equal(u.hresult, '0x80242016');
    assert.equal(u.attempts, 3, 'first attempt + 2 retries');
    assert.match(
      u.message ?? '',
      /KB5002002 failed with 0x80242016 \(WU_E_UH_POSTREBOOTUNEXPECTEDSTATE: The state of the update after its post-reboot operation has completed is unexpected\) after 3 attempt/,
    );
    assert.equal(fleet.host('web01').attempts.get(broken.id), 3, 'not tried a 4th time');
    for (const ok of [SSU, DEFENDER]) assert.equal(host.updates.find((x) => x.updateId === ok.id)?.result, 'installed');
    assert.match(host.message ?? '', /KB5002002/);
    assert.equal(result.report.run.outcome, 'failed');
  } finally {
    await env.cleanup();
  }
});

test('a host that does not come back is unreachable; the others finish; exit 3', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([
      { name: 'web01', updates: [...CHAIN] },
      { name: 'db01', updates: [SSU], comesBack: false },
    ]);
    const result = await startRun(env.deps(fleet), runOptions(['web01', 'db01'], { rebootTimeoutMs: 300 }), never);
    assert.equal(result.exitCode, 3);
    const [web, db] = result.report.hosts;
    assert.equal(web?.outcome, 'compliant');
    assert.equal(db?.outcome, 'unreachable');
    assert.match(db?.message ?? '', /did not come back within the reboot timeout \(300ms\)/);
    assert.equal(fleet.installs('web01', NET.id), 1);
  } finally {
    await env.cleanup();
  }
});

test('an update that comes back after a successful install stops the loop with a clear message', async () => {
  const env = await testEnv();
  try {
    const rollback = { ...CU, requires: [], sticks: false };
    const fleet = new FakeFleet([{ name: 'web01', updates: [rollback, DEFENDER] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { maxCycles: 10 }), never);
    assert.equal(result.exitCode, 2);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'failed');
    assert.ok(host.cycles <= 2, `stopped at the first repeat, not at --max-cycles (cycles: ${host.cycles})`);
    assert.match(
      host.message ?? '',
      /KB5002002 was installed in cycle 1 but is offered again after the reboot: the install does not stick/,
    );
    assert.equal(fleet.installs('web01', rollback.id), 1);
    assert.ok(env.events.some((e) => e.kind === 'loop-detected'));
  } finally {
    await env.cleanup();
  }
});

test('--max-cycles bounds the loop: a chain longer than allowed ends pending with what is left, exit 2', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [...CHAIN] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { maxCycles: 2 }), never);
    const host = result.report.hosts[0]!;
    assert.equal(host.cycles, 2);
    assert.equal(host.outcome, 'pending');
    assert.match(host.message ?? '', /Stopped after 2 cycle\(s\) \(--max-cycles 2\)/);
    assert.equal(fleet.installs('web01', NET.id), 0);
    assert.equal(result.exitCode, 2);
  } finally {
    await env.cleanup();
  }
});

test('--scan changes nothing and reports matching updates as available (pending), exit 0', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([
      { name: 'web01', updates: [...CHAIN, DEFENDER] },
      { name: 'web02', updates: [] },
    ]);
    const result = await startRun(env.deps(fleet), runOptions(['web01', 'web02'], { mode: 'scan' }), never);
    assert.equal(result.exitCode, 0);
    const [a, b] = result.report.hosts;
    assert.equal(a?.outcome, 'pending');
    assert.deepEqual(a?.updates.map((u) => u.result).sort(), ['available', 'available']);
    assert.equal(b?.outcome, 'compliant');
    assert.equal(fleet.installs('web01', SSU.id), 0);
    assert.equal(a?.reboots, 0);
  } finally {
    await env.cleanup();
  }
});

test('filters: excluded KBs are left out and reported skipped', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER, { ...SSU, rebootBehavior: 'never' }] }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { filters: { excludeKbs: [SSU.kb] } }), never);
    assert.equal(result.exitCode, 0);
    const u = result.report.hosts[0]!.updates.find((x) => x.updateId === SSU.id);
    assert.equal(u?.result, 'skipped');
    assert.equal(fleet.installs('web01', SSU.id), 0);
    assert.equal(fleet.installs('web01', DEFENDER.id), 1);
  } finally {
    await env.cleanup();
  }
});

test('a lost stream (callback unreachable): the log is read from the agent and the run completes', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [SSU, DEFENDER], streamBroken: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0, result.report.hosts[0]?.message ?? '');
    assert.equal(result.report.hosts[0]?.outcome, 'compliant');
    assert.equal(fleet.installs('web01', SSU.id), 1);
    assert.ok(env.events.some((e) => e.kind === 'log-fetched'));
    assert.ok(
      env.events.some((e) => e.kind === 'agent-event' && e.event.kind === 'update-result'),
      'agent events still reach the live log',
    );
  } finally {
    await env.cleanup();
  }
});

test('the task scheduler refusing the launch with E_ACCESSDENIED is reported as access denied with its error; exit 3', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [SSU], refuseLaunch: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 3);
    assert.equal(result.report.hosts[0]?.outcome, 'access-denied');
    assert.equal(result.report.hosts[0]?.cycles, 0, 'no cycle ran');
    assert.match(
      result.report.hosts[0]?.message ?? '',
      /^Access denied: the task scheduler on web01 refused to start the agent \(0x80070005 E_ACCESSDENIED\): Access is denied/,
    );
  } finally {
    await env.cleanup();
  }
});

test('an unknown target is a usage error before anything starts', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [] }]);
    await assert.rejects(
      startRun(env.deps(fleet), runOptions(['nope']), never),
      (e: Error & { exitCode?: number }) => e.exitCode === 64,
    );
  } finally {
    await env.cleanup();
  }
});

test('events resent and out of order on the callback are applied once, in order', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [SSU, DEFENDER], chaoticStream: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0, result.report.hosts[0]?.message ?? '');
    assert.equal(result.report.hosts[0]?.outcome, 'compliant');
    // Each agent event shows once in the live log, in seq order within its cycle.
    const relayed = env.events
      .filter((e) => e.kind === 'agent-event')
      .map((e) => (e.kind === 'agent-event' ? `${e.cycle}:${e.event.seq}` : ''));
    assert.equal(new Set(relayed).size, relayed.length, 'no event relayed twice');
    for (const cycle of [1, 2]) {
      const seqs = relayed.filter((k) => k.startsWith(`${cycle}:`)).map((k) => Number(k.split(':')[1]));
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.ok(seqs.length > 3);
    }
  } finally {
    await env.cleanup();
  }
});

test('events that arrive while the launch is still being confirmed are not lost', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER], slowLaunchMs: 300 }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0);
    const kinds = env.events
      .filter((e) => e.kind === 'agent-event')
      .map((e) => (e.kind === 'agent-event' ? e.event.kind : ''));
    assert.equal(kinds[0], 'cycle-started');
    assert.ok(
      !env.events.some((e) => e.kind === 'stream-lost' || e.kind === 'log-fetched'),
      'the live stream was enough',
    );
  } finally {
    await env.cleanup();
  }
});

test('a host down at the start is waited for (no cycle counted), then patched; one that stays down is unreachable', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([
      { name: 'web01', updates: [DEFENDER] },
      { name: 'dead01', updates: [DEFENDER] },
    ]);
    fleet.host('web01').reachable = false;
    fleet.host('dead01').reachable = false;
    const running = startRun(env.deps(fleet), runOptions(['web01', 'dead01'], { rebootTimeoutMs: 1_000 }), never);
    // web01 answers once the engine has noticed it was down.
    await env.when((e) => e.host === 'web01' && e.kind === 'waiting-for-host');
    fleet.host('web01').reachable = true;
    const result = await running;
    const [web, dead] = result.report.hosts;
    assert.equal(web?.outcome, 'compliant');
    assert.equal(web?.cycles, 1, 'the wait did not use up a cycle');
    assert.equal(dead?.outcome, 'unreachable');
    assert.equal(dead?.cycles, 0);
    assert.match(
      dead?.message ?? '',
      /dead01 was not reachable within the reboot timeout \(1s\) for cycle 1: it did not answer/,
    );
    assert.equal(result.exitCode, 3);
  } finally {
    await env.cleanup();
  }
});

for (const how of ['warning', 'silent'] as const) {
  test(`the agent's reboot fails (${how === 'warning' ? 'it says so after cycle-finished' : 'it exits without a word'}): the engine reboots the host itself and the run finishes`, async () => {
    const env = await testEnv();
    try {
      const fleet = new FakeFleet([
        { name: 'web01', updates: [...CHAIN], agentRebootFails: { cycle: 2, how } },
        { name: 'web02', updates: [...CHAIN] },
      ]);
      // rebootTimeoutMs 2 s: without the engine's reboot web01 would end unreachable ("same boot id").
      const result = await startRun(env.deps(fleet), runOptions(['web01', 'web02']), never);
      const summary = JSON.stringify(result.report.hosts.map((h) => [h.name, h.outcome, h.message]));
      assert.equal(result.exitCode, 0, summary);
      assert.equal(fleet.agentRebootFailures, 1);
      const web01 = result.report.hosts.find((h) => h.name === 'web01')!;
      assert.equal(web01.outcome, 'compliant');
      for (const u of CHAIN) assert.equal(web01.updates.find((x) => x.updateId === u.id)?.result, 'installed');
      assert.equal(fleet.engineReboots.get('web01'), 1, 'rebooted once by the engine');
      assert.equal(fleet.engineReboots.get('web02') ?? 0, 0, 'a host whose agent rebooted is left alone');
      assert.equal(fleet.host('web01').bootCount, 4, "three reboots in all, one of them the engine's");
      const byEngine = env.events.filter((e) => e.kind === 'reboot-started' && e.by === 'engine');
      assert.equal(byEngine.length, 1);
      assert.equal(byEngine[0]!.host, 'web01');
      assert.match(
        byEngine[0]!.kind === 'reboot-started' ? byEngine[0]!.reason : '',
        how === 'warning' ? /agent could not reboot.*fetch failed/ : /agent could not reboot.*exited without rebooting/,
      );
    } finally {
      await env.cleanup();
    }
  });
}

// ── what the operator sees (issue 6) ─────────────────────────────────────────────────────────

test('the agent\'s "rebooting now", sent twice, is logged once per reboot; a failure is logged once', async () => {
  const env = await testEnv();
  try {
    const flaky = { ...SSU, failTimes: 1, hresult: '0x80242016' };
    const fleet = new FakeFleet([{ name: 'web01', updates: [flaky, CU], resendsRebooting: true }]);
    const result = await startRun(env.deps(fleet), runOptions(['web01']), never);
    assert.equal(result.exitCode, 0, result.report.hosts[0]?.message ?? '');
    const rebootingLines = env.events.filter((e) => e.kind === 'agent-event' && e.event.kind === 'rebooting');
    const agentReboots = env.events.filter((e) => e.kind === 'reboot-started' && e.by === 'agent').length;
    assert.ok(agentReboots >= 1);
    assert.equal(rebootingLines.length, agentReboots, 'one "rebooting now" per reboot');
    const failureLines = env.events.filter(
      (e) =>
        e.kind === 'update-failed' ||
        (e.kind === 'agent-event' && e.event.kind === 'update-result' && e.event.resultCode === 'failed'),
    );
    assert.deepEqual(
      failureLines.map((e) => e.kind),
      ['update-failed'],
      'the failure once, with its meaning and what happens next',
    );
  } finally {
    await env.cleanup();
  }
});

test('a host that does not come back: a line about every minute of the 20-minute wait, then unreachable', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'lost01', updates: [SSU], comesBack: false }]);
    const result = await startRun(
      env.deps(fleet, { timing: { ...FAST_TIMING, probeInitialDelayMs: 5_000, probeMaxDelayMs: 60_000 } }),
      runOptions(['lost01'], { rebootTimeoutMs: 20 * 60_000 }),
      never,
    );
    assert.equal(result.exitCode, 3);
    const waits = env.events.filter((e) => e.kind === 'still-waiting');
    assert.ok(waits.length >= 18 && waits.length <= 20, `about one line a minute (${waits.length})`);
    const fifth = formatRunLogEvent(waits[4]!);
    assert.match(
      fifth,
      /lost01 {2}still waiting for lost01 to come back from its reboot: 5m of 20m \(not answering\)$/,
    );
  } finally {
    await env.cleanup();
  }
});
