/** Rule and ring validation: each invalid input gets a stable code the server returns with a 400. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRule } from './rules.ts';
import { validateRings } from './rings.ts';
import { ring } from './test-fixtures.ts';
import type { Ring, Rule } from './types.ts';

const codes = (problems: { code: string; path: string }[]): string[] => problems.map((p) => `${p.code}@${p.path}`);

test('rule validation: valid rules have no problems', () => {
  assert.deepEqual(validateRule({ id: 'r', action: 'forbid', kbs: ['KB5044444', '5044445'] }), []);
  assert.deepEqual(
    validateRule(
      {
        id: 'r',
        action: 'allow',
        classifications: ['security updates'],
        severities: ['Critical', 'none'],
        rings: ['pilot'],
      },
      ['pilot'],
    ),
    [],
  );
});

const badRules: [string, Omit<Rule, 'id'>, string[]][] = [
  ['no selector at all', { action: 'allow', rings: ['pilot'] }, ['RULE_EMPTY_SELECTOR@']],
  ['only empty lists', { action: 'forbid', kbs: [], titlePattern: '  ' }, ['RULE_EMPTY_SELECTOR@']],
  ['unknown action', { action: 'approve' as never, kbs: ['5044444'] }, ['RULE_BAD_ACTION@action']],
  ['bad KB', { action: 'forbid', kbs: ['5044444', 'KB12x'] }, ['RULE_BAD_KB@kbs[1]']],
  ['bad UpdateID', { action: 'forbid', updateIds: ['not-a-guid'] }, ['RULE_BAD_UPDATE_ID@updateIds[0]']],
  [
    'unknown classification',
    { action: 'allow', classifications: ['Security Update'] },
    ['RULE_UNKNOWN_CLASSIFICATION@classifications[0]'],
  ],
  ['unknown severity', { action: 'allow', severities: ['Severe'] }, ['RULE_UNKNOWN_SEVERITY@severities[0]']],
  ['bad regex', { action: 'forbid', titlePattern: '(unclosed' }, ['RULE_BAD_PATTERN@titlePattern']],
  ['bad host pattern', { action: 'forbid', kbs: ['5044444'], hosts: ['web 01'] }, ['RULE_BAD_HOST_PATTERN@hosts[0]']],
  ['unknown ring', { action: 'forbid', kbs: ['5044444'], rings: ['prod'] }, ['RULE_UNKNOWN_RING@rings[0]']],
];
for (const [name, rule, want] of badRules) {
  test(`rule validation: ${name}`, () => assert.deepEqual(codes(validateRule(rule, ['pilot', 'broad'])), want));
}

test('ring validation: the defaults are valid', () => {
  assert.deepEqual(
    validateRings([
      ring('pilot'),
      ring('broad', { promotion: { minHosts: 3, minSuccessPercent: 95, soakHours: 24, maxFailurePercent: 5 } }),
    ]),
    [],
  );
});

const badRings: [string, Partial<Ring>, string[]][] = [
  ['bad name', { name: 'Pilot Ring' }, ['RING_BAD_NAME@rings[0].name']],
  ['bad member', { members: ['web 01'] }, ['RING_BAD_MEMBER@rings[0].members[0]']],
  [
    'unknown severity',
    { allowedSeverities: ['Urgent' as never] },
    ['RING_UNKNOWN_SEVERITY@rings[0].allowedSeverities[0]'],
  ],
  ['negative delay', { installDelayDays: -1 }, ['RING_BAD_DELAY@rings[0].installDelayDays']],
  ['scan every minute', { scanIntervalMinutes: 1 }, ['RING_BAD_SCAN_INTERVAL@rings[0].scanIntervalMinutes']],
  [
    'window without weekdays, bad start, zero duration',
    { maintenanceWindows: [{ weekdays: [], start: '25:00', durationMinutes: 0, timeZone: 'UTC' }] },
    [
      'RING_BAD_WINDOW@rings[0].maintenanceWindows[0].weekdays',
      'RING_BAD_WINDOW@rings[0].maintenanceWindows[0].start',
      'RING_BAD_WINDOW@rings[0].maintenanceWindows[0].durationMinutes',
    ],
  ],
  [
    'unknown time zone',
    { maintenanceWindows: [{ weekdays: ['sat'], start: '22:00', durationMinutes: 60, timeZone: 'Europe/Pariss' }] },
    ['RING_BAD_TIME_ZONE@rings[0].maintenanceWindows[0].timeZone'],
  ],
  [
    'bad weekday',
    { maintenanceWindows: [{ weekdays: ['saturday' as never], start: '22:00', durationMinutes: 60, timeZone: 'UTC' }] },
    ['RING_BAD_WINDOW@rings[0].maintenanceWindows[0].weekdays[0]'],
  ],
  ['bad reboot policy', { rebootPolicy: 'sometimes' as never }, ['RING_BAD_REBOOT_POLICY@rings[0].rebootPolicy']],
  [
    'bad promotion',
    { promotion: { minHosts: 0, minSuccessPercent: 120, soakHours: -1, maxFailurePercent: 5 } },
    [
      'RING_BAD_PROMOTION@rings[0].promotion.minHosts',
      'RING_BAD_PROMOTION@rings[0].promotion.minSuccessPercent',
      'RING_BAD_PROMOTION@rings[0].promotion.soakHours',
    ],
  ],
];
for (const [name, over, want] of badRings) {
  test(`ring validation: ${name}`, () => assert.deepEqual(codes(validateRings([ring('pilot', over)])), want));
}

test('ring validation: a name used twice', () => {
  assert.deepEqual(codes(validateRings([ring('pilot'), ring('pilot')])), ['RING_DUPLICATE@rings[1].name']);
});
