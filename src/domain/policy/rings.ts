/**
 * Rings: validation with stable codes (the server answers 400 with them), and which ring a host
 * is in. Rings are an ordered list, pilot first; an update reaches ring k+1 only through ring k's
 * promotion gate (promotion.ts). A host's ring comes from its enrollment when it has one,
 * otherwise from the first ring whose member patterns match its name; a host in no ring gets
 * only what rules scoped to it (or unscoped allows) allow — nothing by default.
 */
import { REBOOT_POLICIES } from '../agent-log.ts';
import { anyHostMatches, isHostPattern } from './match.ts';
import { RULE_SEVERITIES, WEEKDAYS, type HostFacts, type PolicyProblem, type Ring } from './types.ts';
import { isValidTimeZone, parseWindowStart } from './windows.ts';

/** WSUS's default detection frequency is 22 h; an hour is the least that makes sense for a full scan. */
export const MIN_SCAN_INTERVAL_MINUTES = 60;
export const MAX_INSTALL_DELAY_DAYS = 365;
/** A window longer than a week would overlap itself. */
export const MAX_WINDOW_MINUTES = 7 * 24 * 60;

/** Defaults for a ring created with only a name: nothing allowed until a rule or the admin says so. */
export const DEFAULT_RING: Omit<Ring, 'name'> = Object.freeze({
  members: [],
  defaultAllow: false,
  allowedSeverities: null,
  installDelayDays: 0,
  scanIntervalMinutes: 22 * 60,
  maintenanceWindows: [],
  rebootPolicy: 'if-required',
  installAtShutdown: false,
  directDownload: false,
  promotion: null,
});

const RING_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const isInt = (n: unknown, min: number, max: number): boolean =>
  typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
const isPercent = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 100;

/**
 * Checks one ring. Codes: RING_BAD_NAME, RING_BAD_MEMBER, RING_UNKNOWN_SEVERITY, RING_BAD_DELAY,
 * RING_BAD_SCAN_INTERVAL, RING_BAD_WINDOW, RING_BAD_TIME_ZONE, RING_BAD_REBOOT_POLICY,
 * RING_BAD_PROMOTION.
 */
export function validateRing(ring: Ring, path = ''): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const at = (p: string): string => (path ? `${path}.${p}` : p);
  const add = (code: string, p: string, message: string): void => void problems.push({ code, path: at(p), message });
  if (typeof ring.name !== 'string' || !RING_NAME_RE.test(ring.name))
    add(
      'RING_BAD_NAME',
      'name',
      `ring name ${JSON.stringify(ring.name)} must be 1-63 lower-case letters, digits, - or _, starting with a letter or digit`,
    );
  (ring.members ?? []).forEach((m, i) => {
    if (!isHostPattern(m))
      add(
        'RING_BAD_MEMBER',
        `members[${i}]`,
        `${JSON.stringify(m)} is not a host name or pattern (letters, digits, . - _ and * ?)`,
      );
  });
  (ring.allowedSeverities ?? []).forEach((s, i) => {
    if (!(RULE_SEVERITIES as readonly string[]).includes(s))
      add(
        'RING_UNKNOWN_SEVERITY',
        `allowedSeverities[${i}]`,
        `unknown severity ${JSON.stringify(s)}; known: ${RULE_SEVERITIES.join(', ')}`,
      );
  });
  if (!isInt(ring.installDelayDays, 0, MAX_INSTALL_DELAY_DAYS))
    add(
      'RING_BAD_DELAY',
      'installDelayDays',
      `installDelayDays must be a whole number of days from 0 to ${MAX_INSTALL_DELAY_DAYS}`,
    );
  if (!isInt(ring.scanIntervalMinutes, MIN_SCAN_INTERVAL_MINUTES, 31 * 24 * 60))
    add(
      'RING_BAD_SCAN_INTERVAL',
      'scanIntervalMinutes',
      `scanIntervalMinutes must be a whole number from ${MIN_SCAN_INTERVAL_MINUTES} (an hour) to 44640 (a month)`,
    );
  (ring.maintenanceWindows ?? []).forEach((w, i) => {
    const wp = `maintenanceWindows[${i}]`;
    if (!Array.isArray(w.weekdays) || w.weekdays.length === 0)
      add('RING_BAD_WINDOW', `${wp}.weekdays`, `a window needs at least one weekday (${WEEKDAYS.join(', ')})`);
    else
      w.weekdays.forEach((d, j) => {
        if (!(WEEKDAYS as readonly string[]).includes(d))
          add(
            'RING_BAD_WINDOW',
            `${wp}.weekdays[${j}]`,
            `${JSON.stringify(d)} is not a weekday; write ${WEEKDAYS.join(', ')}`,
          );
      });
    if (typeof w.start !== 'string' || !parseWindowStart(w.start))
      add('RING_BAD_WINDOW', `${wp}.start`, `start ${JSON.stringify(w.start)} must be a 24-hour local time HH:MM`);
    if (!isInt(w.durationMinutes, 1, MAX_WINDOW_MINUTES))
      add(
        'RING_BAD_WINDOW',
        `${wp}.durationMinutes`,
        `durationMinutes must be a whole number from 1 to ${MAX_WINDOW_MINUTES}`,
      );
    if (typeof w.timeZone !== 'string' || w.timeZone === '' || !isValidTimeZone(w.timeZone))
      add(
        'RING_BAD_TIME_ZONE',
        `${wp}.timeZone`,
        `${JSON.stringify(w.timeZone)} is not an IANA time zone (write e.g. "Europe/Paris" or "UTC"); a window's zone is never guessed`,
      );
  });
  if (!(REBOOT_POLICIES as readonly string[]).includes(ring.rebootPolicy))
    add('RING_BAD_REBOOT_POLICY', 'rebootPolicy', `rebootPolicy must be one of ${REBOOT_POLICIES.join(', ')}`);
  const p = ring.promotion;
  if (p) {
    if (!isInt(p.minHosts, 1, 1_000_000))
      add('RING_BAD_PROMOTION', 'promotion.minHosts', 'promotion.minHosts must be a whole number of hosts, at least 1');
    if (!isPercent(p.minSuccessPercent))
      add(
        'RING_BAD_PROMOTION',
        'promotion.minSuccessPercent',
        'promotion.minSuccessPercent must be a percentage from 0 to 100',
      );
    if (!isPercent(p.maxFailurePercent))
      add(
        'RING_BAD_PROMOTION',
        'promotion.maxFailurePercent',
        'promotion.maxFailurePercent must be a percentage from 0 to 100',
      );
    if (typeof p.soakHours !== 'number' || !Number.isFinite(p.soakHours) || p.soakHours < 0)
      add('RING_BAD_PROMOTION', 'promotion.soakHours', 'promotion.soakHours must be a number of hours, 0 or more');
  }
  return problems;
}

/** Checks the ordered list: each ring, plus RING_DUPLICATE for a name used twice. */
export function validateRings(rings: readonly Ring[]): PolicyProblem[] {
  const problems = rings.flatMap((r, i) => validateRing(r, `rings[${i}]`));
  const seen = new Set<string>();
  rings.forEach((r, i) => {
    if (seen.has(r.name))
      problems.push({
        code: 'RING_DUPLICATE',
        path: `rings[${i}].name`,
        message: `two rings are named ${JSON.stringify(r.name)}`,
      });
    seen.add(r.name);
  });
  return problems;
}

/**
 * The host's ring: its enrolled ring when that still exists, else the first ring whose members
 * match, else null.
 */
export function ringOfHost(host: Pick<HostFacts, 'name' | 'ring'>, rings: readonly Ring[]): Ring | null {
  if (host.ring !== null) {
    const assigned = rings.find((r) => r.name === host.ring);
    if (assigned) return assigned;
  }
  return rings.find((r) => anyHostMatches(r.members, host.name)) ?? null;
}
