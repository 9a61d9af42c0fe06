/**
 * Maintenance windows: "is now inside a window" and "when does the next one start", in the
 * window's own IANA time zone. Zone maths goes through Intl (the platform's tz database), never a
 * hand-written DST table: a wall-clock time is turned into an instant by asking Intl for the zone
 * offset and correcting once more (the offset can change between the guess and the answer).
 *
 * DST rules, as Windows Task Scheduler and cron users expect:
 * - a start time that does not exist (02:30 on the spring-forward night) moves forward by the
 *   length of the gap (03:30 local), as Temporal's "compatible" disambiguation does;
 * - a start time that exists twice (01:30 on the fall-back night) starts at the first of the two;
 * - a window's duration is real elapsed time: a 4-hour window across fall-back ends 3 wall-clock
 *   hours after its start.
 */
import type { MaintenanceWindow, Weekday } from './types.ts';
import { WEEKDAYS } from './types.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when Intl knows the zone (an IANA name such as "Europe/Paris" or "UTC"). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    // RangeError is Intl's only answer for an unknown zone; the caller reports it with a code.
    return false;
  }
}

interface LocalParts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function localParts(instantMs: number, timeZone: string): LocalParts {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instantMs)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** The zone's offset from UTC at an instant, in ms (Paris in summer: +7 200 000). */
export function zoneOffsetMs(instantMs: number, timeZone: string): number {
  const p = localParts(instantMs, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The instant of a local wall-clock time in a zone (month 1-based). Gap: moved forward by the
 * gap's length; overlap: the earlier instant.
 *
 * @example zonedTimeToInstant(2026, 3, 29, 2, 30, 'Europe/Paris') // 2026-03-29T01:30:00Z (03:30 CEST)
 */
export function zonedTimeToInstant(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  timeZone: string,
): Date {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  // Two candidates: the offsets just before and just after the wall time (they differ only near a transition).
  const before = zoneOffsetMs(wall - DAY_MS / 2, timeZone);
  const after = zoneOffsetMs(wall + DAY_MS / 2, timeZone);
  const candidates = [...new Set([before, after])]
    .map((off) => wall - off)
    .filter((t) => {
      const p = localParts(t, timeZone);
      return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute) === wall;
    });
  if (candidates.length > 0) return new Date(Math.min(...candidates));
  // In the gap: the wall time never happens. Read it with the offset in force before the
  // transition, which lands the same distance past the gap (02:30 → 03:30).
  return new Date(wall - before);
}

export interface WindowOccurrence {
  readonly window: MaintenanceWindow;
  readonly start: Date;
  readonly end: Date;
}

function parseStart(start: string): { hour: number; minute: number } | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(start);
  return m ? { hour: Number(m[1]), minute: Number(m[2]) } : null;
}

/** Occurrences of one window whose local start day lies in [fromDay, toDay] days from the local date of `around`. */
function occurrences(window: MaintenanceWindow, around: Date, fromDay: number, toDay: number): WindowOccurrence[] {
  const start = parseStart(window.start);
  if (!start) return [];
  const today = localParts(around.getTime(), window.timeZone);
  const out: WindowOccurrence[] = [];
  for (let k = fromDay; k <= toDay; k++) {
    // Calendar arithmetic on a UTC date: day-of-week and month lengths do not depend on the zone.
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + k));
    const weekday: Weekday = WEEKDAYS[date.getUTCDay()]!;
    if (!window.weekdays.includes(weekday)) continue;
    const s = zonedTimeToInstant(
      date.getUTCFullYear(),
      date.getUTCMonth() + 1,
      date.getUTCDate(),
      start.hour,
      start.minute,
      window.timeZone,
    );
    out.push({ window, start: s, end: new Date(s.getTime() + window.durationMinutes * MINUTE_MS) });
  }
  return out;
}

/** Windows may last up to a week; look that far back for one still open. */
const LOOKBACK_DAYS = 8;

/**
 * The window occurrence `now` is inside (the one ending last when several overlap), or null.
 * No windows at all means "any time": callers check `windows.length === 0` first (see
 * `scheduleAt`), because an empty list has no occurrence to return.
 */
export function currentWindow(windows: readonly MaintenanceWindow[], now: Date): WindowOccurrence | null {
  let best: WindowOccurrence | null = null;
  for (const w of windows) {
    for (const o of occurrences(w, now, -LOOKBACK_DAYS, 0)) {
      if (o.start <= now && now < o.end && (!best || o.end > best.end)) best = o;
    }
  }
  return best;
}

/** The first window occurrence starting strictly after `now`, or null when no window has a weekday. */
export function nextWindow(windows: readonly MaintenanceWindow[], now: Date): WindowOccurrence | null {
  let best: WindowOccurrence | null = null;
  for (const w of windows) {
    for (const o of occurrences(w, now, 0, 8)) {
      if (o.start > now && (!best || o.start < best.start)) best = o;
    }
  }
  return best;
}

export interface Schedule {
  /** Unattended installs may run now. */
  readonly inside: boolean;
  /** When the current window closes (null: no windows, or outside one). */
  readonly closesAt: Date | null;
  /** When the next window opens (null: no windows configured). */
  readonly nextStart: Date | null;
}

/**
 * What the scheduler needs for a ring at `now`: inside a window?, until when, and the next start.
 * A ring without windows may install at any time. Operator actions ignore windows (issue 7).
 *
 * @example scheduleAt(ring.maintenanceWindows, now) // { inside: false, closesAt: null, nextStart: 2026-11-24T01:00:00Z }
 */
export function scheduleAt(windows: readonly MaintenanceWindow[], now: Date): Schedule {
  if (windows.length === 0) return { inside: true, closesAt: null, nextStart: null };
  const current = currentWindow(windows, now);
  const next = nextWindow(windows, now);
  return { inside: current !== null, closesAt: current?.end ?? null, nextStart: next?.start ?? null };
}

export { parseStart as parseWindowStart };
