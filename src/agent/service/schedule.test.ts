import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_CAP_MS, backoffDelayMs, inWindow, jitteredIntervalMs, windowClosesInMs } from './schedule.ts';

test('backoff grows exponentially with full jitter and is capped', () => {
  assert.equal(
    backoffDelayMs(0, () => 1),
    1_000,
  );
  assert.equal(
    backoffDelayMs(3, () => 1),
    8_000,
  );
  assert.equal(
    backoffDelayMs(3, () => 0.5),
    4_000,
  );
  assert.equal(
    backoffDelayMs(40, () => 1),
    BACKOFF_CAP_MS,
  );
  assert.equal(
    backoffDelayMs(5, () => 0),
    100,
    'never zero',
  );
});

test('scan intervals vary by ±10 %', () => {
  assert.equal(
    jitteredIntervalMs(3_600_000, () => 0),
    3_240_000,
  );
  assert.equal(
    jitteredIntervalMs(3_600_000, () => 1),
    3_960_000,
  );
});

test('maintenance windows: local time zone, crossing midnight, weekdays', () => {
  // Wednesday 22:00 Paris (UTC+1 in November) for 4 hours.
  const w = { weekdays: [3], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Paris' };
  const cases: [string, boolean][] = [
    ['2026-11-11T20:59:00Z', false], // Wed 21:59 Paris
    ['2026-11-11T21:00:00Z', true], // Wed 22:00 Paris
    ['2026-11-11T23:30:00Z', true], // Thu 00:30 Paris: still the Wednesday window
    ['2026-11-12T00:59:00Z', true],
    ['2026-11-12T01:00:00Z', false], // Thu 02:00 Paris: closed
    ['2026-11-12T21:30:00Z', false], // Thursday evening: not a window day
  ];
  for (const [at, expected] of cases) assert.equal(inWindow(w, new Date(at)), expected, at);
  // Saturday 23:00 UTC for 2 h reaches into Sunday (week wrap).
  const sat = { weekdays: [6], start: '23:00', durationMinutes: 120, timeZone: 'UTC' };
  assert.equal(inWindow(sat, new Date('2026-11-15T00:30:00Z')), true);
  assert.equal(inWindow(sat, new Date('2026-11-15T01:00:00Z')), false);
});

test('the open window closes in: to the millisecond, the latest of overlapping windows, 0 when closed', () => {
  const w = { weekdays: [3], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Paris' };
  assert.equal(windowClosesInMs([w], new Date('2026-11-12T00:30:00Z')), 30 * 60_000);
  assert.equal(windowClosesInMs([w], new Date('2026-11-12T00:59:59.500Z')), 500);
  assert.equal(windowClosesInMs([w], new Date('2026-11-12T01:00:00Z')), 0);
  assert.equal(windowClosesInMs([w], new Date('2026-11-11T20:59:00Z')), 0);
  const longer = { weekdays: [3, 4], start: '23:00', durationMinutes: 300, timeZone: 'Europe/Paris' };
  assert.equal(windowClosesInMs([w, longer], new Date('2026-11-12T00:30:00Z')), 150 * 60_000);
  assert.equal(windowClosesInMs([], new Date('2026-11-12T00:30:00Z')), 0);
});
