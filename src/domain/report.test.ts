/** Exit-code precedence and the report's per-update messages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, exitCodeFor, failureMessage, runOutcomeFor } from './report.ts';
import type { HostOutcome } from './cycle.ts';
import { initialHostState } from './cycle.ts';
import type { Mode } from './agent-log.ts';

const cases: readonly [readonly HostOutcome[], Mode, number][] = [
  [['compliant'], 'install', 0],
  [['compliant', 'compliant'], 'install', 0],
  [['compliant', 'failed'], 'install', 2],
  [['pending'], 'install', 2],
  [['pending'], 'scan', 0],
  [['pending', 'compliant'], 'download', 0],
  [['failed', 'unreachable'], 'install', 3],
  [['unreachable', 'timed-out', 'failed'], 'install', 4],
  [['timed-out', 'cancelled', 'unreachable', 'failed'], 'install', 5],
  [['cancelled'], 'scan', 5],
  [['failed'], 'scan', 2],
];

for (const [outcomes, mode, code] of cases) {
  test(`exit code: ${outcomes.join('+')} in ${mode} mode → ${code}`, () => {
    assert.equal(exitCodeFor(outcomes, mode), code);
  });
}

test('run outcome names follow the exit code', () => {
  assert.deepEqual(
    [0, 2, 3, 4, 5].map((c) => runOutcomeFor(c as 0)),
    ['succeeded', 'failed', 'unreachable', 'deadline-reached', 'cancelled'],
  );
});

test('failure message carries HRESULT, name, meaning and attempts', () => {
  const describe = (h: string) =>
    h === '0x80240016'
      ? {
          name: 'WU_E_INSTALL_NOT_ALLOWED',
          meaning:
            'Operation tried to install while another installation was in progress or the system was pending a mandatory restart.',
        }
      : null;
  assert.equal(
    failureMessage('KB5044444', '0x80240016', 2, describe),
    'KB5044444 failed with 0x80240016 (WU_E_INSTALL_NOT_ALLOWED: Operation tried to install while another installation was in progress or the system was pending a mandatory restart) after 2 attempt(s).',
  );
  assert.equal(failureMessage('KB1', '0x80000001', 1, describe), 'KB1 failed with 0x80000001 after 1 attempt(s).');
  assert.equal(failureMessage('KB1', null, 1, describe), 'KB1 failed without an HRESULT after 1 attempt(s).');
});

test('report of an unfinished run: hosts not at an end are pending, no exit code yet', () => {
  const host = {
    ...initialHostState('web01', {
      mode: 'install',
      reboot: 'if-required',
      maxCycles: 5,
      retries: 1,
      rebootTimeoutMs: 1,
      probeInitialDelayMs: 1,
      probeMaxDelayMs: 1,
    }),
    phase: 'rebooting' as const,
  };
  const r = buildReport({
    runId: 'r1',
    mode: 'install',
    startedAt: 'x',
    finishedAt: null,
    hosts: [host],
    describe: () => null,
  });
  assert.equal(r.run.outcome, 'running');
  assert.equal(r.run.exitCode, null);
  assert.equal(r.hosts[0]?.outcome, 'pending');
});
