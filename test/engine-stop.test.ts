/** Engine: --parallel / --serial limits, the deadline, cancel and resume. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listRuns, loadRunOptions, resumeRun, startRun } from '../src/engine/run.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { CHAIN, CU, DEFENDER, NET, SSU, never, runOptions, testEnv } from './engine-helpers.ts';

const names = (n: number, prefix = 'h') =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);

test('--parallel 2 is never exceeded and is used; every host finishes', async () => {
  const env = await testEnv();
  try {
    const hosts = names(6);
    const fleet = new FakeFleet(hosts.map((name) => ({ name, updates: [SSU, { ...CU }], rebootMs: 20 })));
    const result = await startRun(env.deps(fleet), runOptions(hosts, { parallel: 2 }), never);
    assert.equal(result.exitCode, 0);
    assert.equal(fleet.maxBusy, 2, `at most 2 hosts busy at once (saw ${fleet.maxBusy})`);
    assert.ok(result.report.hosts.every((h) => h.outcome === 'compliant'));
  } finally {
    await env.cleanup();
  }
});

test('--serial patches one host at a time', async () => {
  const env = await testEnv();
  try {
    const hosts = names(3);
    const fleet = new FakeFleet(hosts.map((name) => ({ name, updates: [SSU] })));
    const result = await startRun(env.deps(fleet), runOptions(hosts, { parallel: 1 }), never);
    assert.equal(result.exitCode, 0);
    assert.equal(fleet.maxBusy, 1);
    // Host order is kept: each host's first launch comes after the previous host finished.
    const order = env.events
      .filter((e) => e.kind === 'cycle-launched' || e.kind === 'host-finished')
      .map((e) => `${e.kind}:${e.host}`);
    assert.deepEqual(
      order.filter((x) => x.startsWith('host-finished')),
      hosts.map((h) => `host-finished:${h}`),
    );
    const firstLaunch = (h: string) => order.indexOf(`cycle-launched:${h}`);
    assert.ok(firstLaunch('h02') > order.indexOf('host-finished:h01'));
    assert.ok(firstLaunch('h03') > order.indexOf('host-finished:h02'));
  } finally {
    await env.cleanup();
  }
});

test('deadline: no new cycles after it, running agents stopped, hosts timed-out, exit 4', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([
      { name: 'slow01', updates: [...CHAIN], stepMs: 150, rebootMs: 400 },
      { name: 'fast01', updates: [{ ...DEFENDER }] },
    ]);
    // fast01 needs ~50 ms; slow01's chain needs 3 reboots (> 2 s).
    const deadlineAt = new Date(env.clock.now().getTime() + 1_200);
    const result = await startRun(env.deps(fleet), runOptions(['slow01', 'fast01'], { deadlineAt }), never);
    assert.equal(result.exitCode, 4);
    const [slow, fast] = result.report.hosts;
    assert.equal(fast?.outcome, 'compliant');
    assert.equal(slow?.outcome, 'timed-out');
    assert.match(slow?.message ?? '', /deadline passed/);
    const launchesAfter = fleet.host('slow01').launches.length;
    assert.ok(launchesAfter < 4, 'did not run the chain to completion');
    assert.equal(fleet.installs('slow01', NET.id), 0);
    assert.equal(result.report.run.outcome, 'deadline-reached');
  } finally {
    await env.cleanup();
  }
});

test('cancel stops cleanly (agent stopped, state saved, exit 5); resume finishes with nothing installed twice', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([
      { name: 'web01', updates: [...CHAIN], stepMs: 30, installUntilStoppedInCycle: 2 },
      { name: 'web02', updates: [SSU, DEFENDER], stepMs: 30, installUntilStoppedInCycle: 1 },
      { name: 'web03', updates: [SSU] },
    ]);
    const ctl = new AbortController();
    const running = startRun(env.deps(fleet), runOptions(['web01', 'web02', 'web03'], { parallel: 2 }), ctl.signal);
    // Cancel while web01's second cycle is installing (after one reboot) and web02's first is;
    // web03 waits for a slot (--parallel 2).
    await env.when((e) => e.host === 'web01' && e.kind === 'cycle-launched' && e.cycle === 2);
    await env.when(
      (e) => e.host === 'web01' && e.kind === 'agent-event' && e.cycle === 2 && e.event.kind === 'progress',
    );
    ctl.abort();
    const first = await running;
    assert.equal(first.exitCode, 5);
    assert.equal(first.report.run.outcome, 'cancelled');
    const web01 = first.report.hosts.find((h) => h.name === 'web01')!;
    assert.equal(web01.outcome, 'cancelled');
    assert.equal(first.report.hosts.find((h) => h.name === 'web03')?.outcome, 'cancelled', 'queued host not started');
    assert.equal(fleet.host('web03').launches.length, 0);
    const agent = fleet.host('web01').agent!;
    assert.ok(
      agent.events.some((e) => e.kind === 'cycle-finished' && e.outcome === 'aborted'),
      'the running agent was told to stop',
    );
    assert.ok(!agent.running, 'the stopped agent had exited when the run returned');
    // The update in flight when the cancel came finished installing: the report says so.
    assert.equal(fleet.installs('web01', CU.id), 1);
    assert.equal(web01.updates.find((u) => u.updateId === CU.id)?.result, 'installed');

    const second = await resumeRun(env.deps(fleet), first.runId, never);
    assert.equal(second.exitCode, 0, JSON.stringify(second.report.hosts.map((h) => [h.name, h.outcome, h.message])));
    assert.equal(second.runId, first.runId);
    assert.ok(second.report.hosts.every((h) => h.outcome === 'compliant'));
    for (const host of ['web01', 'web02', 'web03']) {
      for (const [id, n] of fleet.host(host).installCounts) assert.equal(n, 1, `${host} ${id} installed once`);
    }
    assert.equal(fleet.installs('web01', NET.id), 1);
    assert.ok(env.events.some((e) => e.kind === 'run-started' && e.resumed));
  } finally {
    await env.cleanup();
  }
});

test('resume of a finished run returns its report and changes nothing', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER] }]);
    const first = await startRun(env.deps(fleet), runOptions(['web01']), never);
    const again = await resumeRun(env.deps(fleet), first.runId, never);
    assert.equal(again.exitCode, first.exitCode);
    assert.deepEqual(again.report.hosts, first.report.hosts);
    assert.equal(fleet.host('web01').launches.length, 1);
    await assert.rejects(resumeRun(env.deps(fleet), 'no-such-run', never), /No run no-such-run/);
  } finally {
    await env.cleanup();
  }
});

test('after the deadline (exit 4), resume finishes the timed-out hosts; the passed deadline does not fire again', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [...CHAIN], stepMs: 40, rebootMs: 60 }]);
    const first = await startRun(
      env.deps(fleet),
      runOptions(['web01'], { deadlineAt: new Date(env.clock.now().getTime() + 150) }),
      never,
    );
    assert.equal(first.exitCode, 4);
    const second = await resumeRun(env.deps(fleet), first.runId, never);
    assert.equal(second.exitCode, 0, JSON.stringify(second.report.hosts[0]));
    assert.equal(fleet.installs('web01', NET.id), 1, JSON.stringify(second.report.hosts[0]));
    for (const [id, n] of fleet.host('web01').installCounts) assert.equal(n, 1, `${id} installed once`);
  } finally {
    await env.cleanup();
  }
});

test('an unreachable host (exit 3) is picked up again by resume once it is back', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'db01', updates: [SSU, { ...CU }], comesBack: false }]);
    const first = await startRun(env.deps(fleet), runOptions(['db01'], { rebootTimeoutMs: 200 }), never);
    assert.equal(first.exitCode, 3);
    assert.match(first.report.hosts[0]?.message ?? '', /then resume the run/);
    // Someone fixed the host: it is up again, in a new boot.
    fleet.host('db01').reachable = true;
    fleet.host('db01').comesBack = true;
    const second = await resumeRun(env.deps(fleet), first.runId, never);
    assert.equal(second.exitCode, 0, second.report.hosts[0]?.message ?? '');
    assert.equal(second.report.hosts[0]?.outcome, 'compliant');
    assert.equal(fleet.installs('db01', CU.id), 1);
    assert.equal(fleet.installs('db01', SSU.id), 1);
  } finally {
    await env.cleanup();
  }
});

test('listRuns and loadRunOptions: a run can be found and resumed with only its id', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [DEFENDER] }]);
    const result = await startRun(
      env.deps(fleet),
      runOptions(['web01'], { meta: { transport: 'fake', report: 'out.json' } }),
      never,
    );
    const runs = await listRuns({ store: env.store });
    assert.deepEqual(
      runs.map((r) => [r.id, r.outcome, r.exitCode, r.targets]),
      [[result.runId, 'succeeded', 0, ['web01']]],
    );
    const options = await loadRunOptions({ store: env.store }, result.runId);
    assert.deepEqual(options?.meta, { transport: 'fake', report: 'out.json' });
    assert.equal(await loadRunOptions({ store: env.store }, 'nope'), null);
    // A caller-chosen id is used as given, once.
    const named = await startRun(env.deps(fleet), runOptions(['web01'], { runId: 'night-2026-11-21' }), never);
    assert.equal(named.runId, 'night-2026-11-21');
    assert.equal(named.report.run.id, 'night-2026-11-21');
    await assert.rejects(
      startRun(env.deps(fleet), runOptions(['web01'], { runId: 'night-2026-11-21' }), never),
      /already exists/,
    );
    await assert.rejects(startRun(env.deps(fleet), runOptions(['web01'], { runId: '../etc' }), never), /run id is/);
  } finally {
    await env.cleanup();
  }
});

// ── honest counting (issue 6) ────────────────────────────────────────────────────────────────

test('--deadline passing while the first cycle is still being started (client still being copied): TIMED-OUT after 0 cycles, not 1', async () => {
  const env = await testEnv();
  try {
    const fleet = new FakeFleet([{ name: 'web01', updates: [SSU], slowPrepareMs: 5_000 }]);
    const deadlineAt = new Date(env.clock.now().getTime() + 1_000);
    const result = await startRun(env.deps(fleet), runOptions(['web01'], { deadlineAt }), never);
    assert.equal(result.exitCode, 4);
    const host = result.report.hosts[0]!;
    assert.equal(host.outcome, 'timed-out');
    assert.equal(host.cycles, 0);
    assert.match(host.message ?? '', /while its first cycle was being started/);
    const finished = env.events.find((e) => e.kind === 'host-finished');
    assert.ok(finished && finished.kind === 'host-finished');
    assert.equal(finished.cycles, 0);
    assert.equal(fleet.host('web01').launches.length, 0, 'no agent was started');
  } finally {
    await env.cleanup();
  }
});

test('a cycle cut short by a cancel does not count against --max-cycles: the resumed host finishes (was PENDING, exit 2)', async () => {
  const env = await testEnv();
  try {
    // The chain needs 4 cycles that run to an end; --max-cycles 4 allows exactly that.
    const fleet = new FakeFleet([{ name: 'web01', updates: [...CHAIN], installUntilStoppedInCycle: 2 }]);
    const ctl = new AbortController();
    const running = startRun(env.deps(fleet), runOptions(['web01'], { maxCycles: 4 }), ctl.signal);
    await env.when(
      (e) => e.host === 'web01' && e.kind === 'agent-event' && e.cycle === 2 && e.event.kind === 'progress',
    );
    ctl.abort();
    const first = await running;
    assert.equal(first.exitCode, 5);
    assert.equal(first.report.hosts[0]?.interruptedCycles, 1);
    const second = await resumeRun(env.deps(fleet), first.runId, never);
    const host = second.report.hosts[0]!;
    assert.equal(second.exitCode, 0, host.message ?? '');
    assert.equal(host.outcome, 'compliant');
    assert.equal(host.cycles, 4, 'cycles that ran to an end');
    assert.equal(host.interruptedCycles, 1);
    assert.equal(fleet.installs('web01', NET.id), 1);
  } finally {
    await env.cleanup();
  }
});
