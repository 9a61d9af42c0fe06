/** mayInstallNow: forbidden never installs; operators ignore windows; unattended work waits for one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicy } from './decide.ts';
import { mayInstallNow } from './schedule.ts';
import { host, needed, ring, update } from './test-fixtures.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const catalog = new Map([[A, update(A, { kbs: ['5000001'] })]]);
const R = ring('pilot', {
  defaultAllow: true,
  installAtShutdown: false,
  maintenanceWindows: [{ weekdays: ['sat'], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Paris' }],
});
const h = host('web01', 'pilot', [needed(A)]);
const stateAt = (rules: { id: string; action: 'allow' | 'forbid'; kbs: string[] }[], now: Date) =>
  createPolicy({ hosts: [h], rules, rings: [R], catalog, overrides: [] }).stateOf(h, A, now);

test('unattended installs wait for the window; inside it they run; work left goes on in the next window', () => {
  const tuesday = new Date('2026-11-24T10:00:00Z');
  const out = mayInstallNow(stateAt([], tuesday), R, 'schedule', tuesday);
  assert.equal(out.install, false);
  assert.equal(out.nextStart?.toISOString(), '2026-11-28T21:00:00.000Z'); // Saturday 22:00 CET
  const inside = new Date('2026-11-29T00:30:00Z'); // Sunday 01:30 Paris, window still open
  assert.equal(mayInstallNow(stateAt([], inside), R, 'schedule', inside).install, true);
  const after = new Date('2026-11-29T01:00:00Z');
  assert.equal(
    mayInstallNow(stateAt([], after), R, 'schedule', after).nextStart?.toISOString(),
    '2026-12-05T21:00:00.000Z',
  );
});

test('an operator action runs outside the window, but never installs a forbidden update', () => {
  const tuesday = new Date('2026-11-24T10:00:00Z');
  assert.equal(mayInstallNow(stateAt([], tuesday), R, 'operator', tuesday).install, true);
  const forbidden = mayInstallNow(
    stateAt([{ id: 'no', action: 'forbid', kbs: ['5000001'] }], tuesday),
    R,
    'operator',
    tuesday,
  );
  assert.deepEqual([forbidden.install, forbidden.reason], [false, 'forbidden — rule no (forbid)']);
});

test('install at shutdown only where the ring says so', () => {
  const now = new Date('2026-11-24T10:00:00Z');
  assert.equal(mayInstallNow(stateAt([], now), R, 'shutdown', now).install, false);
  assert.equal(mayInstallNow(stateAt([], now), { ...R, installAtShutdown: true }, 'shutdown', now).install, true);
});
