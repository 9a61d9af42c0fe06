/** What a transition saves and prints, checked without a run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent, AgentEventBody } from '../domain/agent-log.ts';
import { initialHostState, step, type HostEvent, type HostState } from '../domain/cycle.ts';
import { isProgressOnly, snapshot, transitionLogBodies, transitionRows } from './transition-log.ts';

const NOW = new Date('2026-11-21T06:00:00.000Z');
const POLICY = {
  mode: 'install',
  reboot: 'if-required',
  maxCycles: 5,
  retries: 1,
  rebootTimeoutMs: 60_000,
  probeInitialDelayMs: 1_000,
  probeMaxDelayMs: 8_000,
} as const;
const describe = () => ({
  name: 'WU_E_UH_POSTREBOOTUNEXPECTEDSTATE',
  meaning: 'The state of the update after its post-reboot operation has completed is unexpected.',
});

function running(): HostState {
  const launching = step(initialHostState('web01', POLICY), { kind: 'start' }, NOW).state;
  return step(launching, { kind: 'launched', taskId: 't', pid: 7, bootId: 'b1' }, NOW).state;
}
const agent = (e: AgentEventBody & { seq: number }): HostEvent => ({
  kind: 'agent',
  event: { at: NOW.toISOString(), ...e } as AgentEvent,
});

test('a progress event is progress only: one event row, no phase change, one log line', () => {
  const before = running();
  const event = agent({ seq: 1, kind: 'progress', phase: 'install', updateId: 'u1', percent: 50 });
  const result = step(before, event, NOW);
  assert.equal(isProgressOnly(event, result), true);
  assert.deepEqual(
    transitionRows(before, event, result, NOW).map((r) => r.kind),
    ['agent'],
  );
  assert.deepEqual(
    transitionLogBodies(before, event, result, describe).map((b) => b.kind),
    ['agent-event'],
  );
});

test('an agent event already applied is neither logged again nor progress', () => {
  const before = { ...running(), lastSeq: 4 };
  const event = agent({ seq: 3, kind: 'rebooting' });
  const result = step(before, event, NOW);
  assert.deepEqual(transitionLogBodies(before, event, result, describe), []);
});

test('a launch: the phase change is a row; the log says the cycle started; the host row counts cycles', () => {
  const before = step(initialHostState('web01', POLICY), { kind: 'start' }, NOW).state;
  const event: HostEvent = { kind: 'launched', taskId: 't', pid: 7, bootId: 'b1' };
  const result = step(before, event, NOW);
  const rows = transitionRows(before, event, result, NOW);
  assert.deepEqual(
    rows.map((r) => r.kind),
    ['launched', 'transition'],
  );
  assert.deepEqual(rows[1]?.data, { from: 'launching', to: 'running', message: null });
  assert.deepEqual(transitionLogBodies(before, event, result, describe), [
    { kind: 'cycle-launched', cycle: 1, taskId: 't', pid: 7, bootId: 'b1' },
  ]);
  assert.equal(snapshot(before, result.state).cycle, 1);
});

test('a failed install is logged once — the update-failed line with the HRESULT named, not the agent event too — and the update is in the host row', () => {
  const before = running();
  const scan = step(
    before,
    agent({
      seq: 1,
      kind: 'scan-result',
      pass: 1,
      found: [{ updateId: 'u1', title: 'Cumulative Update (KB5002002)', kbs: ['5002002'] }] as never,
      selected: ['u1'],
      skipped: [],
    }),
    NOW,
  ).state;
  const event = agent({
    seq: 2,
    kind: 'update-result',
    phase: 'install',
    updateId: 'u1',
    resultCode: 'failed',
    hresult: '0x80242016',
    rebootRequired: false,
  });
  const result = step(scan, event, NOW);
  const bodies = transitionLogBodies(scan, event, result, describe);
  assert.deepEqual(
    bodies.map((b) => b.kind),
    ['update-failed'],
  );
  const failed = bodies[0]!;
  assert.ok(
    failed.kind === 'update-failed' &&
      failed.hresultName === 'WU_E_UH_POSTREBOOTUNEXPECTEDSTATE' &&
      failed.final === false,
  );
  assert.equal(failed.label, 'Cumulative Update (KB5002002)', 'the KB is not repeated when the title names it');
  assert.deepEqual(
    snapshot(scan, result.state).updates.map((u) => [u.updateId, u.result, u.hresult]),
    [['u1', 'failed', '0x80242016']],
  );
});
