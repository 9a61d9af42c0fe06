/**
 * A clock for tests that moves only when told (the Clock of domain/clock.ts). It replaces real
 * 10–40 ms timers in engine, agent and lab tests: a 20-minute reboot wait is simulated in
 * milliseconds, and what happens in which order no longer depends on the machine's load.
 */
import type { Clock } from '../domain/clock.ts';

interface Sleeper {
  readonly at: number;
  readonly order: number;
  readonly resolve: () => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * A clock that moves only when told. `advance(ms)` fires every sleep that falls due on the way, in
 * time order, letting the woken code run (promise callbacks and I/O callbacks already queued)
 * before it fires the next one; `runUntil(pred)` jumps from one due sleep to the next until `pred`
 * holds — a whole run, reboots included, at the speed of the code.
 *
 * @example
 *   const clock = new ManualClock(new Date('2026-11-21T06:00:00Z'));
 *   const slept = clock.sleep(20 * 60_000, signal);
 *   await clock.advance(20 * 60_000); // `slept` has resolved; clock.now() is 06:20
 */
export class ManualClock implements Clock {
  private t: number;
  private order = 0;
  private sleepers: Sleeper[] = [];

  constructor(start: Date = new Date('2026-11-21T06:00:00.000Z')) {
    this.t = start.getTime();
  }

  now(): Date {
    return new Date(this.t);
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.t + Math.max(0, ms),
        order: this.order++,
        signal,
        resolve: () => {
          signal.removeEventListener('abort', sleeper.onAbort);
          resolve();
        },
        onAbort: () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', sleeper.onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** Sleeps not yet due. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** When the next sleep falls due (ms since the epoch), or null when nothing sleeps. */
  nextDueAt(): number | null {
    const next = this.earliest();
    return next ? next.at : null;
  }

  /** Moves time forward by `ms`, waking every sleep due on the way in order. */
  async advance(ms: number): Promise<void> {
    const target = this.t + Math.max(0, ms);
    await settle();
    for (let next = this.earliest(); next && next.at <= target; next = this.earliest()) {
      this.wake(next);
      await settle();
    }
    this.t = Math.max(this.t, target);
    await settle();
  }

  /**
   * Jumps from one due sleep to the next until `done()` holds; fails when nothing sleeps any more
   * (the code waits for something other than time) or after `maxMs` of simulated time.
   */
  async runUntil(done: () => boolean, maxMs = 24 * 3_600_000): Promise<void> {
    const limit = this.t + maxMs;
    await settle();
    while (!done()) {
      const next = this.earliest();
      if (!next) {
        // Nothing sleeps: give I/O already under way (a loopback request, a file) a chance.
        await settle(IDLE_TURNS);
        if (done()) return;
        if (!this.earliest())
          throw new Error(
            `ManualClock.runUntil: nothing is waiting on the clock at ${this.now().toISOString()} and the condition does not hold`,
          );
        continue;
      }
      if (next.at > limit)
        throw new Error(`ManualClock.runUntil: the condition did not hold within ${maxMs} ms of simulated time`);
      this.wake(next);
      await settle();
    }
  }

  /**
   * Lets time run on its own, as a discrete-event simulation: whenever the code has nothing left
   * to do but sleep, the next sleep falls due at once. `busy()` holds time still while real I/O is
   * under way (an HTTP request on loopback), for at most MAX_BUSY_TURNS turns of the event loop —
   * so code that waits for that I/O sees it land before any timeout of its own fires.
   *
   * @example
   *   const auto = clock.autoAdvance({ busy: () => fleet.inFlight > 0 });
   *   const result = await startRun({ ...deps, clock }, options, signal); // 3 reboots, in ms
   *   await auto.stop();
   */
  autoAdvance(options: { readonly busy?: () => boolean } = {}): { stop(): Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      let busyTurns = 0;
      while (!stopped) {
        await settle();
        if (stopped) break;
        if (options.busy?.() && busyTurns++ < MAX_BUSY_TURNS) continue;
        busyTurns = 0;
        const next = this.earliest();
        if (next) this.wake(next);
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  private earliest(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.sleepers) if (!best || s.at < best.at || (s.at === best.at && s.order < best.order)) best = s;
    return best;
  }

  private wake(s: Sleeper): void {
    this.sleepers = this.sleepers.filter((x) => x !== s);
    this.t = Math.max(this.t, s.at);
    s.resolve();
  }
}

/** How long real I/O may hold simulated time still (event-loop turns; loopback HTTP needs a few). */
const MAX_BUSY_TURNS = 2_000;
/** Turns of the event loop given to woken code before the next sleep fires. */
const SETTLE_TURNS = 3;
/** Turns given when nothing sleeps, before concluding nothing will. */
const IDLE_TURNS = 50;

/** Lets promise callbacks and already-queued I/O callbacks run (a few macrotask turns). */
function settle(turns = SETTLE_TURNS): Promise<void> {
  return new Promise<void>((resolve) => {
    let left = turns;
    const turn = () => (--left <= 0 ? resolve() : setImmediate(turn));
    setImmediate(turn);
  });
}
