import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CycleOutcome, Mode, RebootPolicy } from '../domain/agent-log.ts';
import { busyPollDelayMs, decideOutcome, decideWillReboot } from './cycle-decisions.ts';

describe('decideWillReboot', () => {
  const cases: [Mode, RebootPolicy, CycleOutcome, boolean, number, boolean][] = [
    // mode, policy, outcome, rebootRequired, installed → reboots?
    ['install', 'if-required', 'reboot-required', true, 1, true],
    ['install', 'if-required', 'done', false, 3, false],
    ['install', 'always', 'done', false, 3, true],
    ['install', 'always', 'done', false, 0, false],
    ['install', 'never', 'reboot-required', true, 1, false],
    ['install', 'if-required', 'reboot-pending', true, 0, true],
    ['install', 'never', 'reboot-pending', true, 0, false],
    ['download', 'always', 'reboot-pending', true, 0, true],
    ['install', 'always', 'failed', false, 2, false],
    ['install', 'if-required', 'failed', true, 1, true],
    ['install', 'always', 'aborted', true, 1, false],
    ['install', 'always', 'error', true, 1, false],
    ['install', 'always', 'loop-detected', false, 1, true],
    ['scan', 'always', 'done', true, 0, false],
    ['download', 'always', 'done', false, 0, false],
  ];
  for (const [mode, policy, outcome, required, installed, expected] of cases) {
    it(`${mode} ${policy} ${outcome} required=${required} installed=${installed} → ${expected}`, () => {
      assert.equal(decideWillReboot(mode, policy, outcome, required, installed), expected);
    });
  }
});

describe('decideOutcome', () => {
  it('ranks aborted, then reboot-required, failed, loop-detected, done', () => {
    assert.equal(decideOutcome({ aborted: true, rebootRequired: true, failed: 1, loops: 1 }), 'aborted');
    assert.equal(decideOutcome({ aborted: false, rebootRequired: true, failed: 1, loops: 1 }), 'reboot-required');
    assert.equal(decideOutcome({ aborted: false, rebootRequired: false, failed: 1, loops: 1 }), 'failed');
    assert.equal(decideOutcome({ aborted: false, rebootRequired: false, failed: 0, loops: 1 }), 'loop-detected');
    assert.equal(decideOutcome({ aborted: false, rebootRequired: false, failed: 0, loops: 0 }), 'done');
  });
});

describe('busyPollDelayMs', () => {
  it('doubles from 5 s, is capped at 60 s, and jitter only shortens it', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((a) => busyPollDelayMs(a, () => 0)),
      [5_000, 10_000, 20_000, 40_000, 60_000, 60_000],
    );
    assert.equal(
      busyPollDelayMs(10, () => 1),
      48_000,
    );
  });
});
