/** The cycle state machine, table-driven: each row is a situation an administrator would recognise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent, AgentEventBody, CycleOutcome } from './agent-log.ts';
import type { UpdateRecord } from './update.ts';
import {
  type CyclePolicy,
  type HostCommand,
  type HostEvent,
  type HostState,
  type StepResult,
  countedCycles,
  excludedUpdates,
  formatMs,
  initialHostState,
  probeDelayMs,
  step,
} from './cycle.ts';

const T0 = new Date('2026-11-21T06:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const POLICY: CyclePolicy = {
  mode: 'install',
  reboot: 'if-required',
  maxCycles: 5,
  retries: 1,
  rebootTimeoutMs: 60_000,
  probeInitialDelayMs: 1_000,
  probeMaxDelayMs: 8_000,
};

function rec(id: string, kb: string): UpdateRecord {
  return {
    updateId: id,
    revisionNumber: 1,
    title: `Update ${kb}`,
    kbs: [kb],
    msrcSeverity: null,
    classification: 'Security Updates',
    products: [],
    categories: [],
    isDownloaded: false,
    isHidden: false,
    isMandatory: false,
    browseOnly: false,
    type: 'software',
    rebootBehavior: 'always',
    impact: 'normal',
    eulaAccepted: true,
    supersededUpdateIds: [],
    maxDownloadSize: 1,
    lastDeploymentChangeTime: '2026-01-01T00:00:00Z',
    supportUrl: null,
    downloadUrls: [],
  };
}
const A = rec('aaaa', '5000001');
const B = rec('bbbb', '5000002');

/** Agent events with seq numbers assigned in order. */
function agent(...bodies: AgentEventBody[]): HostEvent[] {
  return bodies.map((b, i) => ({ kind: 'agent', event: { ...b, seq: i + 1, at: T0.toISOString() } as AgentEvent }));
}
const scan = (selected: UpdateRecord[], found: UpdateRecord[] = selected): AgentEventBody => ({
  kind: 'scan-result',
  pass: 1,
  found,
  selected: selected.map((u) => u.updateId),
  skipped: found.filter((f) => !selected.includes(f)).map((f) => ({ updateId: f.updateId, reason: 'kb' })),
});
const installed = (u: UpdateRecord): AgentEventBody => ({
  kind: 'update-result',
  phase: 'install',
  updateId: u.updateId,
  resultCode: 'succeeded',
  hresult: null,
  rebootRequired: true,
});
const failed = (u: UpdateRecord, hresult = '0x80242016'): AgentEventBody => ({
  kind: 'update-result',
  phase: 'install',
  updateId: u.updateId,
  resultCode: 'failed',
  hresult,
  rebootRequired: false,
});
const finished = (outcome: CycleOutcome, willReboot: boolean, rebootRequired = willReboot): AgentEventBody => ({
  kind: 'cycle-finished',
  outcome,
  rebootRequired,
  willReboot,
  message: null,
  hresult: null,
});

/** Runs events through step, collecting every command; `now` advances 1 s per event. */
function run(
  state: HostState,
  events: readonly HostEvent[],
  startMs = 0,
): { state: HostState; commands: HostCommand[]; results: StepResult[] } {
  let s = state;
  const commands: HostCommand[] = [];
  const results: StepResult[] = [];
  events.forEach((e, i) => {
    const r = step(s, e, at(startMs + i * 1000));
    results.push(r);
    commands.push(...r.commands);
    s = r.state;
  });
  return { state: s, commands, results };
}

/** A host with its cycle `cycle` launched and running. */
function runningHost(policy: CyclePolicy = POLICY, cycles = 1): HostState {
  let s = initialHostState('web01', policy);
  for (let c = 1; c <= cycles; c++) {
    s = { ...s, phase: 'queued', cycle: c - 1 };
    s = run(s, [{ kind: 'start' }, { kind: 'launched', taskId: 't', pid: 1, bootId: `boot${c}` }]).state;
  }
  return s;
}

const back = (boot: string): HostEvent => ({ kind: 'probe', reachable: true, bootId: boot, servicingIdle: true });

test('start → launch with the cycle number, exclusions and what was installed earlier', () => {
  const r = step(initialHostState('web01', POLICY), { kind: 'start' }, T0);
  assert.equal(r.state.phase, 'launching');
  assert.deepEqual(r.commands, [{ kind: 'launch', cycle: 1, exclude: [], installedEarlier: [] }]);
  const l = step(r.state, { kind: 'launched', taskId: 't1', pid: 42, bootId: 'b1' }, T0);
  assert.equal(l.state.phase, 'running');
  assert.deepEqual(l.state.launch, { taskId: 't1', pid: 42 });
  assert.equal(l.state.bootIdAtLaunch, 'b1');
});

interface Row {
  readonly name: string;
  readonly policy?: Partial<CyclePolicy>;
  readonly events: readonly HostEvent[];
  readonly phase: HostState['phase'];
  readonly command?: HostCommand['kind'];
  readonly message?: RegExp;
}

const rows: readonly Row[] = [
  {
    name: 'nothing applicable: compliant after one cycle',
    events: agent(scan([]), finished('done', false)),
    phase: 'compliant',
    command: 'finish',
  },
  {
    name: 'installed, reboot required and allowed: waits for the reboot',
    events: agent(scan([A]), installed(A), finished('reboot-required', true)),
    phase: 'rebooting',
    command: 'probe',
  },
  {
    name: 'installed, reboot required, --reboot never: pending with what to do',
    policy: { reboot: 'never' },
    events: agent(scan([A]), installed(A), finished('reboot-required', false)),
    phase: 'pending',
    message: /needs a reboot.*--reboot never/,
  },
  {
    name: 'pending reboot at start, policy allows: reboots first',
    events: agent(finished('reboot-pending', true)),
    phase: 'rebooting',
  },
  {
    name: 'pending reboot at start, --reboot never: pending, says so',
    policy: { reboot: 'never' },
    events: agent(finished('reboot-pending', false)),
    phase: 'pending',
    message: /reboot was pending.*nothing was installed/,
  },
  {
    name: 'failure with retries left: the engine reboots to retry',
    events: agent(scan([A]), failed(A), finished('failed', false, false)),
    phase: 'rebooting',
    command: 'reboot',
  },
  {
    name: 'failure, --retries 0: failed at once',
    policy: { retries: 0 },
    events: agent(scan([A]), failed(A), finished('failed', false, false)),
    phase: 'failed',
    message: /KB5000001 \(0x80242016, 1 attempt/,
  },
  {
    name: 'failure, --reboot never: no retry (it needs a reboot), failed',
    policy: { reboot: 'never' },
    events: agent(scan([A]), failed(A), finished('failed', false, false)),
    phase: 'failed',
  },
  {
    name: 'one failed for good, the other installed: failed, not compliant',
    policy: { retries: 0 },
    events: agent(
      scan([A, B]),
      failed(A),
      {
        kind: 'update-result',
        phase: 'install',
        updateId: 'bbbb',
        resultCode: 'succeeded',
        hresult: null,
        rebootRequired: false,
      },
      finished('done', false),
    ),
    phase: 'failed',
    message: /KB5000001/,
  },
  {
    name: 'scan mode, matching updates: pending',
    policy: { mode: 'scan' },
    events: agent(scan([A, B]), finished('done', false)),
    phase: 'pending',
    message: /2 matching update\(s\) available \(--scan\)/,
  },
  {
    name: 'scan mode, nothing matching: compliant',
    policy: { mode: 'scan' },
    events: agent(scan([], [A]), finished('done', false)),
    phase: 'compliant',
  },
  {
    name: 'download mode, downloaded: pending',
    policy: { mode: 'download' },
    events: agent(
      scan([A]),
      {
        kind: 'update-result',
        phase: 'download',
        updateId: 'aaaa',
        resultCode: 'succeeded',
        hresult: null,
        rebootRequired: false,
      },
      finished('done', false),
    ),
    phase: 'pending',
    message: /downloaded, not installed/,
  },
  {
    name: 'agent error: another cycle',
    events: agent(finished('error', false)),
    phase: 'launching',
    command: 'launch',
  },
  {
    name: 'agent error on the last allowed cycle: failed, says max cycles',
    policy: { maxCycles: 1 },
    events: agent(finished('error', false)),
    phase: 'failed',
    message: /Stopped after 1 cycle\(s\) \(--max-cycles 1\)/,
  },
  {
    name: 'agent reports a loop itself: failed with the loop message',
    events: agent(scan([A]), { kind: 'loop-detected', updateIds: ['aaaa'] }, finished('loop-detected', false)),
    phase: 'failed',
    message: /does not stick/,
  },
  {
    name: 'agent gone without cycle-finished: read its log',
    events: [...agent(scan([A])), { kind: 'agent-gone' }],
    phase: 'fetching-log',
    command: 'fetch-log',
  },
  {
    name: 'agent gone, log has the end: carries on from it',
    events: [
      { kind: 'agent-gone' },
      {
        kind: 'log-fetched',
        events: agent(scan([]), finished('done', false)).map((e) => (e as { event: AgentEvent }).event),
      },
    ],
    phase: 'compliant',
  },
  {
    name: 'agent gone, no log: cycle lost, wait for the host',
    events: [{ kind: 'agent-gone' }, { kind: 'log-fetched', events: null }],
    phase: 'waiting-online',
    command: 'probe',
  },
  {
    name: 'cancel while running: stop the agent, cancelled',
    events: [{ kind: 'cancel' }],
    phase: 'cancelled',
    command: 'stop-agent',
  },
  {
    name: 'deadline while running: stop the agent, timed-out',
    events: [{ kind: 'deadline' }],
    phase: 'timed-out',
    command: 'stop-agent',
    message: /deadline passed during cycle 1/,
  },
];

for (const row of rows) {
  test(`cycle: ${row.name}`, () => {
    const r = run(runningHost({ ...POLICY, ...row.policy }), row.events);
    assert.equal(r.state.phase, row.phase, r.state.message ?? '');
    if (row.command)
      assert.ok(
        r.commands.some((c) => c.kind === row.command),
        `commands: ${r.commands.map((c) => c.kind).join(', ')}`,
      );
    if (row.message) assert.match(r.state.message ?? '', row.message);
  });
}

test('duplicate and resent agent events are applied once', () => {
  const events = agent(scan([A]), failed(A));
  const r = run(runningHost(), [...events, ...events, events[1]!]);
  assert.equal(r.state.updates.aaaa?.attempts, 1);
  assert.equal(r.state.lastSeq, 2);
});

test('events out of order in a fetched log are applied in seq order', () => {
  const evs = agent(scan([A]), installed(A), finished('reboot-required', true)).map(
    (e) => (e as { event: AgentEvent }).event,
  );
  const s = run(runningHost(), [{ kind: 'agent-gone' }]).state;
  const r = step(s, { kind: 'log-fetched', events: [evs[2]!, evs[0]!, evs[1]!] }, T0);
  assert.equal(r.state.phase, 'rebooting');
  assert.equal(r.state.updates.aaaa?.result, 'installed');
});

test('reboot wait: same boot id keeps probing with backoff; new boot + servicing idle → next cycle', () => {
  const r = run(runningHost(), agent(scan([A]), installed(A), finished('reboot-required', true)));
  assert.equal(r.state.reboots, 1);
  const delays: number[] = [];
  let s = r.state;
  for (let i = 0; i < 5; i++) {
    const p = step(s, { kind: 'probe', reachable: true, bootId: 'boot1', servicingIdle: true }, at(1000 * (i + 1)));
    assert.equal(p.state.phase, 'rebooting');
    const c = p.commands[0];
    assert.ok(c?.kind === 'probe');
    delays.push(c.delayMs);
    s = p.state;
  }
  assert.deepEqual(delays, [2000, 4000, 8000, 8000, 8000], 'doubles, capped at probeMaxDelayMs');
  const busy = step(s, { kind: 'probe', reachable: true, bootId: 'boot2', servicingIdle: false }, at(9000));
  assert.equal(busy.state.phase, 'waiting-online', 'rebooted but servicing still busy');
  const ok = step(busy.state, back('boot2'), at(10_000));
  assert.equal(ok.state.phase, 'launching');
  assert.deepEqual(ok.commands, [{ kind: 'launch', cycle: 2, exclude: [], installedEarlier: ['aaaa'] }]);
  assert.ok(ok.notes.some((n) => n.kind === 'host-back' && n.afterMs === 10_000 - 2000));
});

test('reboot wait past the reboot timeout: unreachable, with what was last seen', () => {
  const r = run(runningHost(), agent(scan([A]), installed(A), finished('reboot-required', true)));
  const p = step(r.state, { kind: 'probe', reachable: false, bootId: null, servicingIdle: false }, at(2000 + 60_001));
  assert.equal(p.state.phase, 'unreachable');
  assert.match(
    p.state.message ?? '',
    /did not come back within the reboot timeout \(1m\) after the reboot of cycle 1: it did not answer/,
  );
});

test('retry: the failed update is tried again after the reboot and counts attempts; beyond --retries it is excluded', () => {
  const policy = { ...POLICY, retries: 1 };
  let s = run(runningHost(policy), agent(scan([A]), failed(A), finished('failed', false, false))).state;
  assert.equal(s.phase, 'rebooting');
  s = step(s, back('boot9'), at(5000)).state;
  assert.equal(s.phase, 'launching');
  assert.equal(s.cycle, 2);
  s = step(s, { kind: 'launched', taskId: 't', pid: 2, bootId: 'boot9' }, at(6000)).state;
  s = run(s, agent(scan([A]), failed(A, '0x80070005'), finished('failed', false, false)), 7000).state;
  assert.equal(s.phase, 'failed');
  assert.equal(s.updates.aaaa?.attempts, 2);
  assert.equal(s.updates.aaaa?.hresult, '0x80070005');
  assert.deepEqual(excludedUpdates(s), ['aaaa']);
});

test('loop detection: installed in cycle 1, offered again in cycle 2 → failed with the loop message, no further cycle', () => {
  let s = run(runningHost(), agent(scan([A]), installed(A), finished('reboot-required', true))).state;
  s = step(s, back('boot2'), at(3000)).state;
  s = step(s, { kind: 'launched', taskId: 't', pid: 2, bootId: 'boot2' }, at(4000)).state;
  const r = run(s, agent(scan([A]), finished('done', false)), 5000);
  assert.equal(r.state.phase, 'failed');
  assert.equal(
    r.state.message,
    "KB5000001 was installed in cycle 1 but is offered again after the reboot: the install does not stick (silent rollback or a detection that never becomes true). Stopped instead of looping; see the update's history on the host.",
  );
  assert.equal(r.state.updates.aaaa?.result, 'failed');
  assert.ok(!r.commands.some((c) => c.kind === 'launch'));
});

test('cancel and deadline in every non-final phase end the host; finals are untouched', () => {
  const queued = initialHostState('web01', POLICY);
  const rebooting = run(runningHost(), agent(finished('reboot-required', true))).state;
  for (const s of [queued, runningHost(), rebooting]) {
    assert.equal(step(s, { kind: 'cancel' }, T0).state.phase, 'cancelled');
    assert.equal(step(s, { kind: 'deadline' }, T0).state.phase, 'timed-out');
  }
  const done = run(runningHost(), agent(finished('done', false))).state;
  assert.equal(step(done, { kind: 'cancel' }, T0).state.phase, 'compliant');
  assert.equal(
    step(rebooting, { kind: 'cancel' }, T0).commands.some((c) => c.kind === 'stop-agent'),
    false,
    'no agent to stop while rebooting',
  );
});

test('a launch that answers after the host was cancelled: its agent is stopped', () => {
  const s = step(step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state, { kind: 'cancel' }, T0).state;
  const r = step(s, { kind: 'launched', taskId: 't', pid: 7, bootId: 'b' }, T0);
  assert.equal(r.state.phase, 'cancelled');
  assert.deepEqual(r.commands, [{ kind: 'stop-agent', launch: { taskId: 't', pid: 7 } }]);
});

test('resume: cancelled → queued; running → stream lost (read the log); rebooting → probe now with a fresh timeout', () => {
  const cancelled = step(runningHost(), { kind: 'cancel' }, T0).state;
  assert.equal(step(cancelled, { kind: 'resume' }, T0).state.phase, 'queued');
  const running = step(runningHost(), { kind: 'resume' }, T0);
  assert.equal(running.state.phase, 'running');
  assert.equal(running.state.streamLost, true);
  const rebooting = run(runningHost(), agent(finished('reboot-required', true))).state;
  const later = at(10 * 60_000);
  const r = step(rebooting, { kind: 'resume' }, later);
  assert.deepEqual(r.commands, [{ kind: 'probe', delayMs: 0 }]);
  assert.equal(r.state.wait?.deadlineAt, new Date(later.getTime() + 60_000).toISOString());
  const launching = step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state;
  const relaunch = step(launching, { kind: 'resume' }, T0).state;
  assert.equal(relaunch.phase, 'queued');
  assert.equal(step(relaunch, { kind: 'start' }, T0).state.cycle, 1, 'the same cycle is launched again');
});

test('host unreachable at launch: the cycle is not counted; waits, then launches when it answers', () => {
  const launching = step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state;
  const w = step(launching, { kind: 'launch-unreachable' }, T0);
  assert.equal(w.state.phase, 'waiting-online');
  assert.equal(w.state.cycle, 0);
  const r = step(w.state, back('b1'), at(1000));
  assert.equal(r.state.phase, 'launching');
  assert.equal(r.state.cycle, 1);
});

test("launch refused by the task scheduler: unreachable with the scheduler's error; E_ACCESSDENIED is access-denied", () => {
  const launching = step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state;
  const busy = step(launching, { kind: 'launch-refused', hresult: '0x80041326', message: 'The task is disabled.' }, T0);
  assert.equal(busy.state.phase, 'unreachable');
  assert.match(busy.state.message ?? '', /refused to start the agent \(0x80041326\): The task is disabled\./);
  const denied = step(launching, { kind: 'launch-refused', hresult: '0x80070005', message: 'Access is denied.' }, T0);
  assert.equal(denied.state.phase, 'access-denied');
  assert.equal(denied.state.cycle, 0);
  assert.match(
    denied.state.message ?? '',
    /^Access denied: the task scheduler on web01 refused to start the agent \(0x80070005 E_ACCESSDENIED\): Access is denied\. The connector's account needs administrator rights/,
  );
});

test('the target refuses our credentials or its host key in any phase: the host ends at once, no wait', () => {
  const waiting = run(runningHost(), agent(scan([A]), installed(A), finished('reboot-required', true))).state;
  assert.equal(waiting.phase, 'rebooting');
  const auth = step(
    waiting,
    { kind: 'host-refused', failure: 'auth', message: 'web01 refused user patch (password)' },
    T0,
  );
  assert.equal(auth.state.phase, 'access-denied');
  assert.deepEqual(
    auth.commands.map((c) => c.kind),
    ['finish'],
  );
  const key = step(
    step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state,
    { kind: 'host-refused', failure: 'host-key', message: 'host key changed' },
    T0,
  );
  assert.equal(key.state.phase, 'unreachable');
  assert.equal(key.state.cycle, 0, 'the launch that was refused is no cycle');
});

test('events that do not fit the phase are ignored and noted, never thrown', () => {
  const r = step(
    initialHostState('web01', POLICY),
    { kind: 'probe', reachable: true, bootId: 'x', servicingIdle: true },
    T0,
  );
  assert.equal(r.state.phase, 'queued');
  assert.deepEqual(r.notes, [{ kind: 'ignored', event: 'probe', phase: 'queued' }]);
});

test('step never mutates its input', () => {
  const s = runningHost();
  const frozen = JSON.stringify(s);
  run(s, agent(scan([A, B]), installed(A), failed(B), finished('reboot-required', true)));
  assert.equal(JSON.stringify(s), frozen);
});

test('probeDelayMs and formatMs', () => {
  assert.equal(probeDelayMs(POLICY, 0, 100_000), 1000);
  assert.equal(probeDelayMs(POLICY, 10, 100_000), 8000);
  assert.equal(probeDelayMs(POLICY, 10, 500), 500, 'never past the deadline');
  assert.equal(formatMs(20 * 60_000), '20m');
  assert.equal(formatMs(95_000), '1m35s');
  assert.equal(formatMs(300), '300ms');
});

test("after a cancel, the stopped agent's last events are recorded in the report but decide nothing", () => {
  const s = run(runningHost(), agent(scan([A, B]))).state;
  const cancelled = step(s, { kind: 'cancel' }, T0).state;
  const late = agent(scan([A, B]), installed(A), finished('aborted', false)).map(
    (e) => (e as { event: AgentEvent }).event,
  );
  const r = step(cancelled, { kind: 'log-fetched', events: late }, T0);
  assert.equal(r.state.phase, 'cancelled');
  assert.equal(r.state.updates.aaaa?.result, 'installed');
  assert.equal(r.state.updates.bbbb?.result, 'available');
  assert.deepEqual(r.commands, []);
});

test("the agent's reboot failed: same boot after the grace period → the engine reboots; before it, or once rebooted, it only probes", () => {
  const policy: CyclePolicy = { ...POLICY, agentRebootGraceMs: 5_000 };
  const waiting = run(runningHost(policy), agent(scan([A]), installed(A), finished('reboot-required', true))).state;
  assert.equal(waiting.phase, 'rebooting');
  const failedAt = step(waiting, { kind: 'agent-reboot-failed', message: 'fetch failed' }, at(3_000));
  assert.deepEqual(failedAt.commands, [], 'the report alone decides nothing');
  const early = step(
    failedAt.state,
    { kind: 'probe', reachable: true, bootId: 'boot1', servicingIdle: true },
    at(7_000),
  );
  assert.equal(early.commands[0]?.kind, 'probe', 'within the grace period: a shutdown may still be under way');
  const late = step(early.state, { kind: 'probe', reachable: true, bootId: 'boot1', servicingIdle: true }, at(8_000));
  assert.deepEqual(late.commands, [{ kind: 'reboot' }]);
  assert.ok(late.notes.some((n) => n.kind === 'reboot-started' && n.by === 'engine' && /fetch failed/.test(n.reason)));
  assert.equal(late.state.wait?.by, 'engine');
  assert.equal(late.state.reboots, 1, "the agent's reboot never happened: one reboot in all");
  const sent = step(late.state, { kind: 'reboot-sent' }, at(8_100));
  assert.equal(sent.commands[0]?.kind, 'probe');
  const again = step(sent.state, { kind: 'probe', reachable: true, bootId: 'boot1', servicingIdle: true }, at(20_000));
  assert.equal(again.commands[0]?.kind, 'probe', 'the engine reboots once, then waits');
  const up = step(again.state, back('boot2'), at(21_000));
  assert.equal(up.state.phase, 'launching');

  // A warning in the same batch as cycle-finished counts too; an unreachable host is left to come back.
  const batch = run(
    runningHost(policy),
    agent(
      scan([A]),
      installed(A),
      finished('reboot-required', true),
      { kind: 'rebooting' },
      { kind: 'warning', message: 'the reboot failed: 503', hresult: null },
    ),
  ).state;
  assert.ok(batch.wait?.agentRebootFailed);
  const down = step(batch, { kind: 'probe', reachable: false, bootId: null, servicingIdle: false }, at(60_000));
  assert.equal(down.commands[0]?.kind, 'probe');
  // Without a failure report the same boot only means "not down yet".
  const plain = step(waiting, { kind: 'probe', reachable: true, bootId: 'boot1', servicingIdle: true }, at(59_000));
  assert.equal(plain.commands[0]?.kind, 'probe');
});

// ── honest counting (issue 6) ────────────────────────────────────────────────────────────────

test('a cycle cut short by a cancel does not count against --max-cycles: the resumed host finishes its work', () => {
  const policy = { ...POLICY, maxCycles: 2 };
  // Cycle 1 is cancelled mid-install (the connector was stopped, or its store was locked).
  let s = run(runningHost(policy), [...agent(scan([A, B])), { kind: 'cancel' }]).state;
  assert.equal(s.phase, 'cancelled');
  s = run(s, [{ kind: 'resume' }, { kind: 'start' }, { kind: 'launched', taskId: 't', pid: 2, bootId: 'boot1' }]).state;
  assert.equal(s.cycle, 2);
  s = run(s, agent(scan([A, B]), installed(A), installed(B), finished('reboot-required', true)), 10_000).state;
  s = step(s, back('boot2'), at(20_000)).state;
  // Two cycles ran to an end only after this one: the one that confirms nothing is left may run.
  assert.equal(s.phase, 'launching', s.message ?? '');
  s = run(
    s,
    [{ kind: 'launched', taskId: 't', pid: 3, bootId: 'boot2' }, ...agent(scan([]), finished('done', false))],
    30_000,
  ).state;
  assert.equal(s.phase, 'compliant', s.message ?? '');
  assert.equal(countedCycles(s), 2);
  assert.equal(s.interruptedCycles, 1);
});

test('the deadline while the first cycle is still being started: timed out after 0 cycles, and says so', () => {
  const launching = step(initialHostState('web01', POLICY), { kind: 'start' }, T0).state;
  const r = step(launching, { kind: 'deadline' }, T0);
  assert.equal(r.state.phase, 'timed-out');
  assert.equal(countedCycles(r.state), 0);
  assert.match(
    r.state.message ?? '',
    /^The deadline passed while its first cycle was being started: that cycle does not count, and no other was started\. Resume the run to finish\.$/,
  );
  const queued = step(initialHostState('web01', POLICY), { kind: 'deadline' }, T0);
  assert.equal(countedCycles(queued.state), 0);
  assert.match(queued.state.message ?? '', /before its first cycle/);
});

test('a retried update keeps the HRESULT of each attempt', () => {
  let s = run(
    runningHost({ ...POLICY, retries: 2 }),
    agent(scan([A]), failed(A, '0x80242016'), finished('failed', false, false)),
  ).state;
  s = step(s, back('boot9'), at(5000)).state;
  s = step(s, { kind: 'launched', taskId: 't', pid: 2, bootId: 'boot9' }, at(6000)).state;
  s = run(s, agent(scan([A]), failed(A, '0x800F0922'), finished('failed', false, false)), 7000).state;
  s = step(s, back('boot10'), at(9000)).state;
  s = step(s, { kind: 'launched', taskId: 't', pid: 3, bootId: 'boot10' }, at(10_000)).state;
  s = run(s, agent(scan([A]), installed(A), finished('reboot-required', true)), 11_000).state;
  assert.deepEqual(
    s.updates.aaaa?.attemptResults?.map((a) => [a.cycle, a.result, a.hresult]),
    [
      [1, 'failed', '0x80242016'],
      [2, 'failed', '0x800F0922'],
      [3, 'succeeded', null],
    ],
  );
  assert.equal(s.updates.aaaa?.attempts, 3);
});

test('a host that stops on a loop lists what it had found but never installed as blocked, with the reason', () => {
  let s = run(runningHost(), agent(scan([A]), installed(A), finished('reboot-required', true))).state;
  s = step(s, back('boot2'), at(3000)).state;
  s = step(s, { kind: 'launched', taskId: 't', pid: 2, bootId: 'boot2' }, at(4000)).state;
  const r = run(s, agent(scan([A, B]), finished('done', false)), 5000);
  assert.equal(r.state.phase, 'failed');
  assert.equal(r.state.updates.bbbb?.result, 'blocked');
  assert.equal(
    r.state.updates.bbbb?.message,
    'Not installed: the host stopped on the update loop of KB5000001. Run again once that is fixed.',
  );
  // --scan leaves what it found available: that is the result asked for.
  const scanned = run(runningHost({ ...POLICY, mode: 'scan' }), agent(scan([A, B]), finished('done', false))).state;
  assert.equal(scanned.updates.bbbb?.result, 'available');
});
