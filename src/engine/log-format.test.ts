/** The readable log lines an operator sees for the engine's events. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '../domain/agent-log.ts';
import { formatRunLogEvent, leftOut } from './log-format.ts';
import type { RunLogEvent } from './types.ts';

const at = '2026-11-21T05:42:26.000Z';
const agentLine = (event: AgentEvent) =>
  formatRunLogEvent({ at, runId: 'r', host: 'web01', kind: 'agent-event', cycle: 1, event } as RunLogEvent);

test('the installer-busy wait reads as a bound, not a fixed wait', () => {
  assert.equal(
    agentLine({ seq: 3, at, kind: 'waiting', reason: 'installer-busy', seconds: 1800 }),
    '05:42:26 web01  waiting up to 30m: the Windows installer is busy',
  );
});

test('left out: the reasons, counted; a failed update awaiting its retry is not "left out by filters"', () => {
  assert.equal(leftOut([]), '');
  assert.equal(
    leftOut([{ reason: 'failed-this-cycle' }]),
    ', 1 left out: failed in this cycle, retried after a reboot',
  );
  assert.equal(
    leftOut([{ reason: 'kb' }, { reason: 'kb' }, { reason: 'driver' }]),
    ', 3 left out: 2 not in --kb; 1 a driver',
  );
  const line = agentLine({
    seq: 4,
    at,
    kind: 'scan-result',
    pass: 2,
    found: [],
    selected: [],
    skipped: [{ updateId: 'u1', reason: 'failed-this-cycle' }],
  });
  assert.equal(
    line,
    '05:42:26 web01  scan 2: 0 found, 0 selected, 1 left out: failed in this cycle, retried after a reboot',
  );
  assert.doesNotMatch(line, /by filters/);
});

test('a long wait and a transport error read as sentences', () => {
  assert.equal(
    formatRunLogEvent({
      at,
      runId: 'r',
      host: 'lost01',
      kind: 'still-waiting',
      waitingFor: 'lost01',
      reason: 'reboot',
      seen: 'unreachable',
      waitedMs: 5 * 60_000,
      timeoutMs: 20 * 60_000,
    }),
    '05:42:26 lost01  still waiting for lost01 to come back from its reboot: 5m of 20m (not answering)',
  );
  assert.equal(
    formatRunLogEvent({
      at,
      runId: 'r',
      host: 'web01',
      kind: 'transport-error',
      op: 'probe',
      failure: 'internal',
      message: 'boom',
      cause: 'TypeError: x is undefined',
    }),
    '05:42:26 web01  probe failed (internal): boom — cause: TypeError: x is undefined',
  );
});

test('a host timed out before any cycle ran says 0 cycles', () => {
  assert.equal(
    formatRunLogEvent({
      at,
      runId: 'r',
      host: 'web01',
      kind: 'host-finished',
      outcome: 'timed-out',
      message: null,
      cycles: 0,
      reboots: 0,
    }),
    '05:42:26 web01  TIMED-OUT after 0 cycle(s), 0 reboot(s)',
  );
});
