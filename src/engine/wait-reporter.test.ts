/** Long waits are reported about every minute, and only while the host is waited for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHostState, type HostState } from '../domain/cycle.ts';
import { formatRunLogEvent } from './log-format.ts';
import { ManualClock } from './manual-clock.ts';
import type { LogBody } from './host-context.ts';
import type { RunLogEvent } from './types.ts';
import { WaitReporter } from './wait-reporter.ts';

const POLICY = {
  mode: 'install',
  reboot: 'if-required',
  maxCycles: 5,
  retries: 1,
  rebootTimeoutMs: 20 * 60_000,
  probeInitialDelayMs: 5_000,
  probeMaxDelayMs: 60_000,
} as const;

test('a host that does not come back: "still waiting for lost01: 5m of 20m" once a minute, silent once it is back', async () => {
  const clock = new ManualClock(new Date('2026-11-21T06:00:00Z'));
  const since = clock.now().toISOString();
  let state: HostState = {
    ...initialHostState('lost01', POLICY),
    phase: 'rebooting',
    cycle: 1,
    wait: {
      reason: 'reboot',
      by: 'agent',
      since,
      deadlineAt: new Date(clock.now().getTime() + 20 * 60_000).toISOString(),
      attempt: 3,
      lastSeen: 'unreachable',
    },
  };
  const lines: string[] = [];
  const reporter = new WaitReporter(
    clock,
    () => state,
    (body: LogBody) =>
      lines.push(
        formatRunLogEvent({ ...body, at: clock.now().toISOString(), runId: 'r', host: 'lost01' } as RunLogEvent),
      ),
  );
  reporter.follow();
  await clock.advance(59_000);
  assert.deepEqual(lines, []);
  await clock.advance(5 * 60_000 - 59_000);
  assert.equal(lines.length, 5);
  assert.equal(
    lines[4],
    '06:05:00 lost01  still waiting for lost01 to come back from its reboot: 5m of 20m (not answering)',
  );
  // Another transition within the same wait keeps the same rhythm (no restart, no duplicate timer).
  reporter.follow();
  await clock.advance(60_000);
  assert.equal(lines.length, 6);
  state = { ...state, phase: 'queued', wait: null };
  reporter.follow();
  await clock.advance(10 * 60_000);
  assert.equal(lines.length, 6, 'nothing once the wait is over');
  assert.equal(clock.pending, 0, 'no timer left behind');
});
