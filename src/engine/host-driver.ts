/**
 * Drives one host of a run — the event loop. It feeds the cycle state machine its events, saves
 * every transition before executing its commands (write-ahead), and hands the commands to the
 * CommandRunner (command-runner.ts). Agent events arrive on the callback into the AgentInbox
 * (agent-inbox.ts); what a transition saves and prints comes from transition-log.ts.
 *
 * Event sources, in priority order: a stop (cancel/deadline) of the run; results of the commands
 * just executed; agent events from the callback (reordered by seq, duplicates dropped); and, while
 * an agent runs, a poll of the transport (is the agent still running? can its log be read?).
 */
import type { AgentEvent } from '../domain/agent-log.ts';
import {
  type HostEvent,
  type HostState,
  type StepResult,
  awaitsAgentReboot,
  countedCycles,
  isEndPhase,
  step,
} from '../domain/cycle.ts';
import { PatchlineError, EXIT } from '../domain/errors.ts';
import type { EventRow } from '../store/runs-repo.ts';
import { AgentInbox } from './agent-inbox.ts';
import { Doorbell } from './clock.ts';
import { CommandRunner } from './command-runner.ts';
import type { HostContext } from './host-context.ts';
import { isProgressOnly, snapshot, transitionLogBodies, transitionRows } from './transition-log.ts';
import { WaitReporter } from './wait-reporter.ts';

export { buildCycleRequest, type HostContext, type RunStop } from './host-context.ts';

/** isRunning failing this many times in a row means the agent (or its host) is gone. */
const MAX_RUNNING_CHECK_FAILURES = 3;

export class HostDriver {
  private readonly pending: HostEvent[] = [];
  private readonly inbox = new AgentInbox();
  private readonly bell: Doorbell;
  private readonly runner: CommandRunner;
  private readonly waits: WaitReporter;
  private lastPollAtMs = 0;
  private lastAgentEventAtMs = 0;
  private lastLogPollAtMs = 0;
  private runningCheckFailures = 0;
  /** Highest seq of the cycle's agent logged after its cycle-finished: a resent `rebooting` is logged once. */
  private afterEndSeq = 0;

  constructor(
    private state: HostState,
    private readonly ctx: HostContext,
  ) {
    this.bell = new Doorbell(ctx.clock);
    this.runner = new CommandRunner(ctx, {
      current: () => this.state,
      newCycle: () => {
        this.inbox.clear();
        this.afterEndSeq = 0;
      },
      pause: (ms, signal) => this.bell.wait(ms, signal),
      queue: (event) => this.pending.push(event),
      leftovers: () => this.inbox.drainLeftovers(),
      sink: this.sink,
    });
    this.waits = new WaitReporter(
      ctx.clock,
      () => this.state,
      (body) => ctx.log(this.state.host, body),
    );
  }

  get current(): HostState {
    return this.state;
  }

  /** Wakes the loop (a stop was requested). */
  wake(): void {
    this.bell.ring();
  }

  /** Runs the host to an end state. `first` is applied before anything else (resume). */
  async run(first: HostEvent | null): Promise<HostState> {
    let acquired = false;
    try {
      if (!isEndPhase(this.state.phase) || first) {
        try {
          await this.ctx.slots.acquire(this.ctx.stop.signal);
          acquired = true;
        } catch (error) {
          // Stopped while waiting for a slot: the loop below turns the stop into an end state.
          if (!this.ctx.stop.signal.aborted) throw error;
        }
      }
      if (first) await this.apply([first]);
      while (!isEndPhase(this.state.phase)) await this.apply(await this.next());
      // What a stopped agent did before it stopped, and any launch that answered late.
      for (let event = this.pending.shift(); event; event = this.pending.shift()) await this.apply([event]);
    } finally {
      this.runner.unregister();
      this.waits.stop();
      this.inbox.releaseAll();
      if (acquired) this.ctx.slots.release();
    }
    return this.state;
  }

  // ── events in ──────────────────────────────────────────────────────────────────────────────

  /** The next events to apply (several at once when the agent sent a batch), or none yet. */
  private async next(): Promise<readonly HostEvent[]> {
    // Results of commands first: a launch that answered after a stop must be seen, so that the
    // stop that follows stops its agent. Commands started after a stop are aborted by its signal.
    const pending = this.pending.shift();
    if (pending) return [pending];
    const why = this.ctx.stop.reason();
    if (why) return [{ kind: why }];
    switch (this.state.phase) {
      case 'queued':
        return [{ kind: 'start' }];
      case 'running':
        return this.watchAgent();
      default:
        throw new PatchlineError(
          'ENGINE_STUCK',
          `Internal error: host ${this.state.host} is ${this.state.phase} with nothing to wait for. Resume the run; report this if it repeats.`,
          { exitCode: EXIT.INTERNAL, context: { run: this.ctx.runId, host: this.state.host } },
        );
    }
  }

  /** The next agent event in seq order, or a poll of the transport while the agent runs. */
  private async watchAgent(): Promise<readonly HostEvent[]> {
    const ready = this.takeReady();
    if (ready.length > 0) return ready;
    const { timing, clock } = this.ctx;
    const nowMs = clock.now().getTime();
    const untilPoll = Math.max(this.lastPollAtMs, this.runner.launchedAtMs) + timing.agentPollMs - nowMs;
    if (untilPoll > 0) {
      await this.bell.wait(untilPoll, this.ctx.stop.signal);
      return this.takeReady();
    }
    this.lastPollAtMs = nowMs;
    const launch = this.state.launch;
    if (!launch) return [{ kind: 'agent-gone' }];
    let running: boolean;
    const answer = await this.runner.isRunning(launch);
    if (answer !== null && typeof answer === 'object') return [answer];
    if (answer === null) {
      if (this.ctx.stop.signal.aborted) return [];
      // The host may be rebooting under us; after a few failures in a row treat the agent as gone.
      this.runningCheckFailures++;
      running = this.runningCheckFailures < MAX_RUNNING_CHECK_FAILURES;
      if (running)
        this.ctx.log(this.state.host, { kind: 'waiting-for-host', reason: 'lost-cycle', seen: 'unreachable' });
    } else {
      this.runningCheckFailures = 0;
      running = answer;
    }
    const buffered = this.takeReady();
    if (buffered.length > 0) return buffered;
    if (!running) return [{ kind: 'agent-gone' }];
    const silentMs = nowMs - Math.max(this.lastAgentEventAtMs, this.lastLogPollAtMs, this.runner.launchedAtMs);
    if (this.state.streamLost || silentMs >= timing.streamSilenceMs) {
      // The stream is gone (connector restarted) or silent: read whatever log the agent serves.
      this.lastLogPollAtMs = nowMs;
      const events = await this.runner.fetchLog();
      if (events && events.some((e) => e.seq > this.state.lastSeq)) return [{ kind: 'log-fetched', events }];
    }
    return [];
  }

  private takeReady(): HostEvent[] {
    return this.inbox.takeReady(this.state.lastSeq).map((event) => ({ kind: 'agent', event }));
  }

  /** The callback's sink: buffers events, answers the highest seq saved (waits briefly for it). */
  private readonly sink = async (events: readonly AgentEvent[]): Promise<number> => {
    this.lastAgentEventAtMs = this.ctx.clock.now().getTime();
    const highest = () => Math.max(this.state.lastSeq, ...events.map((e) => e.seq));
    if (this.state.phase === 'cancelled' || this.state.phase === 'timed-out') {
      // A stopped agent's last words: kept for the report once it has exited (see stop-agent).
      this.inbox.keepLate(events, this.state.lastSeq);
      this.bell.ring();
      return highest();
    }
    if (!acceptsAgentEvents(this.state)) {
      // After cycle-finished (e.g. the agent's `rebooting`): keep it in the log, nothing to decide —
      // except a warning while we wait for the agent's reboot: its reboot failed (agent-run.ts).
      const seen = Math.max(this.state.lastSeq, this.afterEndSeq);
      const fresh = [...new Map(events.filter((e) => e.seq > seen).map((e) => [e.seq, e])).values()].sort(
        (a, b) => a.seq - b.seq,
      );
      this.afterEndSeq = Math.max(seen, ...fresh.map((e) => e.seq));
      await this.ctx.repo.appendEvents(
        this.ctx.runId,
        fresh.map((e) => ({
          host: this.state.host,
          at: this.ctx.clock.now().toISOString(),
          kind: 'agent',
          cycle: this.state.cycle,
          seq: e.seq,
          data: e,
        })),
      );
      for (const e of fresh) this.ctx.log(this.state.host, { kind: 'agent-event', cycle: this.state.cycle, event: e });
      const failure = fresh.find((e) => e.kind === 'warning');
      // The loop is executing this wait's probe; the event is applied right after it (in order).
      if (failure?.kind === 'warning' && awaitsAgentReboot(this.state))
        this.pending.push({ kind: 'agent-reboot-failed', message: failure.message });
      return highest();
    }
    const target = this.inbox.add(events, this.state.lastSeq);
    this.bell.ring();
    await this.inbox.waitUntil(
      () => this.state.lastSeq >= target || !acceptsAgentEvents(this.state),
      this.ctx.clock,
      this.ctx.timing.ackWaitMs,
    );
    return this.state.lastSeq;
  };

  // ── transitions ────────────────────────────────────────────────────────────────────────────

  /**
   * Steps through the events, saves the resulting state and every row in one transaction, then
   * executes the commands in order (write-ahead). A batch of agent events costs one transaction.
   */
  private async apply(events: readonly HostEvent[]): Promise<void> {
    if (events.length === 0) return;
    const now = this.ctx.clock.now();
    const first = this.state;
    let state = first;
    const steps: { before: HostState; event: HostEvent; result: StepResult }[] = [];
    const rows: EventRow[] = [];
    for (const event of events) {
      const result = step(state, event, now);
      steps.push({ before: state, event, result });
      rows.push(...transitionRows(state, event, result, now));
      state = result.state;
    }
    if (steps.every((s) => isProgressOnly(s.event, s.result))) {
      // Progress (most of an agent's events: ten per install) changes nothing but lastSeq; the
      // event log keeps it, and the host row is saved with the next real transition. A resume
      // that re-reads it from the agent's log applies it again, which changes nothing either.
      await this.ctx.repo.appendEvents(this.ctx.runId, rows);
    } else {
      await this.ctx.repo.saveTransition(this.ctx.runId, snapshot(first, state), rows, now.toISOString());
    }
    this.state = state;
    this.inbox.notify();
    for (const s of steps)
      for (const body of transitionLogBodies(s.before, s.event, s.result, this.ctx.describe))
        this.ctx.log(state.host, body);
    this.waits.follow();
    for (const s of steps) {
      for (const command of s.result.commands) {
        if (command.kind === 'finish')
          this.ctx.log(state.host, {
            kind: 'host-finished',
            outcome: command.outcome,
            message: command.message,
            cycles: countedCycles(this.state),
            reboots: this.state.reboots,
          });
        const event = await this.runner.run(command);
        if (event) this.pending.push(event);
      }
    }
  }
}

/**
 * Whether agent events still feed the state machine: while the cycle runs, and already while its
 * launch is being saved (a fast agent posts before `launched` is applied). After the cycle ended
 * (e.g. the agent's `rebooting`), events only go to the log.
 */
function acceptsAgentEvents(state: HostState): boolean {
  return state.phase === 'running' || state.phase === 'launching';
}
