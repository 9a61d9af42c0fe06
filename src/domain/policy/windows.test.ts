/** Maintenance windows in their own zone, across DST changes and midnight (Intl does the zone maths). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentWindow, nextWindow, scheduleAt, zonedTimeToInstant } from './windows.ts';
import type { MaintenanceWindow } from './types.ts';

const iso = (d: Date | null | undefined): string | null => d?.toISOString() ?? null;
const paris = (over: Partial<MaintenanceWindow> = {}): MaintenanceWindow => ({
  weekdays: ['sun'],
  start: '02:30',
  durationMinutes: 120,
  timeZone: 'Europe/Paris',
  ...over,
});

test('wall time to instant: ordinary, spring-forward gap, fall-back overlap, New York', () => {
  assert.equal(iso(zonedTimeToInstant(2026, 1, 15, 2, 30, 'Europe/Paris')), '2026-01-15T01:30:00.000Z');
  assert.equal(iso(zonedTimeToInstant(2026, 7, 15, 2, 30, 'Europe/Paris')), '2026-07-15T00:30:00.000Z');
  // 2026-03-29 02:30 does not exist in Paris (02:00 → 03:00): it becomes 03:30 CEST.
  assert.equal(iso(zonedTimeToInstant(2026, 3, 29, 2, 30, 'Europe/Paris')), '2026-03-29T01:30:00.000Z');
  // 2026-10-25 02:30 happens twice in Paris: the first one (CEST) is taken.
  assert.equal(iso(zonedTimeToInstant(2026, 10, 25, 2, 30, 'Europe/Paris')), '2026-10-25T00:30:00.000Z');
  // The US changes on another date (2026-03-08): 02:30 does not exist in New York.
  assert.equal(iso(zonedTimeToInstant(2026, 3, 8, 2, 30, 'America/New_York')), '2026-03-08T07:30:00.000Z');
});

test('a Sunday 02:30 Paris window on the spring-forward night opens at 03:30 CEST and lasts 2 real hours', () => {
  const w = [paris()];
  const sat = new Date('2026-03-28T12:00:00Z');
  assert.equal(iso(nextWindow(w, sat)?.start), '2026-03-29T01:30:00.000Z');
  assert.equal(scheduleAt(w, new Date('2026-03-29T01:29:59Z')).inside, false);
  const inside = scheduleAt(w, new Date('2026-03-29T02:00:00Z'));
  assert.equal(inside.inside, true);
  assert.equal(iso(inside.closesAt), '2026-03-29T03:30:00.000Z');
  // The following Sunday is in summer time: 02:30 CEST = 00:30 UTC.
  assert.equal(iso(inside.nextStart), '2026-04-05T00:30:00.000Z');
});

test('a window across fall-back ends after its real duration, not its wall-clock one', () => {
  const w = [paris({ start: '01:00', durationMinutes: 240 })];
  const o = currentWindow(w, new Date('2026-10-25T01:00:00Z'));
  assert.equal(iso(o?.start), '2026-10-24T23:00:00.000Z'); // 01:00 CEST
  assert.equal(iso(o?.end), '2026-10-25T03:00:00.000Z'); // 04:00 CET: 3 wall-clock hours later
});

test('a window across midnight is open after midnight on the next weekday', () => {
  const w: MaintenanceWindow[] = [
    { weekdays: ['fri'], start: '22:00', durationMinutes: 240, timeZone: 'America/New_York' },
  ];
  // Friday 2026-11-27 22:00 EST = Saturday 03:00 UTC; Saturday 01:00 EST is inside.
  const s = scheduleAt(w, new Date('2026-11-28T06:00:00Z'));
  assert.equal(s.inside, true);
  assert.equal(iso(s.closesAt), '2026-11-28T07:00:00.000Z');
  assert.equal(scheduleAt(w, new Date('2026-11-28T07:00:00Z')).inside, false);
  assert.equal(iso(scheduleAt(w, new Date('2026-11-28T07:00:00Z')).nextStart), '2026-12-05T03:00:00.000Z');
});

test("the weekday is the window zone's, not UTC's", () => {
  // Monday 00:30 in Tokyo is Sunday 15:30 UTC.
  const w: MaintenanceWindow[] = [{ weekdays: ['mon'], start: '00:30', durationMinutes: 60, timeZone: 'Asia/Tokyo' }];
  assert.equal(iso(nextWindow(w, new Date('2026-11-22T00:00:00Z'))?.start), '2026-11-22T15:30:00.000Z');
});

test('no windows: installs may run at any time; several windows: the earliest next one', () => {
  assert.deepEqual(scheduleAt([], new Date('2026-11-24T10:00:00Z')), { inside: true, closesAt: null, nextStart: null });
  const w: MaintenanceWindow[] = [
    { weekdays: ['wed'], start: '03:00', durationMinutes: 60, timeZone: 'UTC' },
    { weekdays: ['tue', 'thu'], start: '23:00', durationMinutes: 60, timeZone: 'UTC' },
  ];
  assert.equal(iso(nextWindow(w, new Date('2026-11-24T10:00:00Z'))?.start), '2026-11-24T23:00:00.000Z');
});
