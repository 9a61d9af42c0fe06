/**
 * Long waits are not silent: while a host is waited for (a reboot, a host that does not answer),
 * one live-log line about every minute says for how long and up to when — "still waiting for
 * lost01: 5m of 20m". It follows the host's state after each transition and keeps one timer on
 * the run's clock, dropped as soon as the wait ends.
 */
import type { HostState, HostWait } from '../domain/cycle.ts';
import { type Clock, sleepUnlessAborted } from './clock.ts';
import type { LogBody } from './host-context.ts';

/** How often a wait is reported: often enough that a scheduler's job log never looks hung. */
export const WAIT_REPORT_INTERVAL_MS = 60_000;

export class WaitReporter {
  private following: { readonly since: string; readonly ctl: AbortController } | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly current: () => HostState,
    private readonly log: (body: LogBody) => void,
    private readonly intervalMs = WAIT_REPORT_INTERVAL_MS,
  ) {}

  /** Starts, keeps or stops the reports after a transition of the host. */
  follow(): void {
    const state = this.current();
    const wait = state.wait;
    if (!wait || (state.phase !== 'rebooting' && state.phase !== 'waiting-online')) {
      this.stop();
      return;
    }
    if (this.following?.since === wait.since) return;
    this.stop();
    const ctl = new AbortController();
    this.following = { since: wait.since, ctl };
    void this.report(state.host, () => this.current().wait ?? wait, ctl.signal);
  }

  /** No more reports (the wait ended, or the host's driver is done). Idempotent. */
  stop(): void {
    this.following?.ctl.abort();
    this.following = null;
  }

  private async report(host: string, wait: () => HostWait, signal: AbortSignal): Promise<void> {
    while (await sleepUnlessAborted(this.clock, this.intervalMs, signal)) {
      const w = wait();
      const since = Date.parse(w.since);
      this.log({
        kind: 'still-waiting',
        waitingFor: host,
        reason: w.reason,
        seen: w.lastSeen,
        waitedMs: this.clock.now().getTime() - since,
        timeoutMs: Date.parse(w.deadlineAt) - since,
      });
    }
  }
}
