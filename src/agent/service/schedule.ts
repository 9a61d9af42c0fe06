/**
 * The agent's timing decisions, pure: capped exponential backoff with full jitter after errors,
 * jittered scan intervals (so 10,000 agents restarted together do not scan and report in one
 * second), and whether `now` is inside one of the ring's maintenance windows (in the window's own
 * time zone, windows may cross midnight).
 */
import type { MaintenanceWindow } from '../../domain/agent-protocol.ts';

/** First retry after an error waits up to this long. */
export const BACKOFF_BASE_MS = 1_000;
/** Retries never wait longer than this (a server down for an hour is found within 5 min of its return). */
export const BACKOFF_CAP_MS = 5 * 60_000;
/** Scan intervals vary by ±this fraction. */
export const SCAN_JITTER_FRACTION = 0.1;

/**
 * Delay before retry number `attempt` (0-based): uniformly random in [0, min(cap, base·2^attempt)]
 * ("full jitter"), never below 100 ms so a flapping server is not hammered.
 *
 * @example backoffDelayMs(3, () => 0.5) === 4000
 */
export function backoffDelayMs(
  attempt: number,
  random: () => number,
  baseMs = BACKOFF_BASE_MS,
  capMs = BACKOFF_CAP_MS,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(100, Math.round(ceiling * random()));
}

/** The interval ±SCAN_JITTER_FRACTION. */
export function jitteredIntervalMs(intervalMs: number, random: () => number): number {
  return Math.round(intervalMs * (1 - SCAN_JITTER_FRACTION + 2 * SCAN_JITTER_FRACTION * random()));
}

/** Weekday (0 = Sunday) and minutes since local midnight of `at` in `timeZone`. */
export function localTime(at: Date, timeZone: string): { weekday: number; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(get('weekday'));
  return { weekday, minutes: Number(get('hour')) * 60 + Number(get('minute')) };
}

/**
 * Is `now` inside `window`? A window starts on each listed weekday at `start` (local) and lasts
 * `durationMinutes`, possibly into the next days.
 *
 * @example inWindow({ weekdays: [3], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Paris' }, new Date('2026-11-12T00:30:00Z')) === true
 */
export function inWindow(window: MaintenanceWindow, now: Date): boolean {
  const { weekday, minutes } = localTime(now, window.timeZone);
  const [h, m] = window.start.split(':').map(Number) as [number, number];
  const startMinutes = h * 60 + m;
  const nowInWeek = weekday * 1440 + minutes;
  const WEEK = 7 * 1440;
  return window.weekdays.some((day) => {
    const start = day * 1440 + startMinutes;
    // Minutes since this window's most recent start (mod one week).
    const since = (((nowInWeek - start) % WEEK) + WEEK) % WEEK;
    return since < window.durationMinutes;
  });
}

export function inAnyWindow(windows: readonly MaintenanceWindow[], now: Date): boolean {
  return windows.some((w) => inWindow(w, now));
}

/**
 * Milliseconds until the windows open at `now` close (the latest of them), 0 when none is open.
 * Unattended installs stop then: what is left waits for the next window.
 *
 * @example windowClosesInMs([{ weekdays: [3], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Paris' }], new Date('2026-11-12T00:30:00Z')) === 30 * 60_000
 */
export function windowClosesInMs(windows: readonly MaintenanceWindow[], now: Date): number {
  let latest = 0;
  for (const window of windows) {
    const local = localTime(now, window.timeZone);
    const [h, m] = window.start.split(':').map(Number) as [number, number];
    const WEEK = 7 * 1440;
    const nowInWeek = local.weekday * 1440 + local.minutes;
    // Local minutes drop the seconds: subtract them so the close is exact (zones are whole minutes apart).
    const intoMinuteMs = now.getUTCSeconds() * 1_000 + now.getUTCMilliseconds();
    for (const day of window.weekdays) {
      const since = (((nowInWeek - (day * 1440 + h * 60 + m)) % WEEK) + WEEK) % WEEK;
      if (since < window.durationMinutes)
        latest = Math.max(latest, (window.durationMinutes - since) * 60_000 - intoMinuteMs);
    }
  }
  return latest;
}
