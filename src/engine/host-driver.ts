/**
 * Drives one host of a run: feeds the cycle state machine its events, saves every transition
 * before executing its commands (write-ahead), and executes the commands through the transport.
 *
 * Event sources, in priority order: a stop (cancel/deadline) of the run; results of the commands
 * just executed; agent events from the callback (reordered by seq, duplicates dropped); and, while
 * an agent runs, a poll of the transport (is the agent still running? can its log be read?).
 */
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import {
  type HostCommand, type HostEvent, type HostNote, type HostState, type LaunchInfo, type StepResult, isEndPhase, step, updateName,
} from '../domain/cycle.ts';
import { PatchlineError, EXIT } from '../domain/errors.ts';
import type { DescribeHResult } from '../domain/report.ts';
import type { EventRow, HostSnapshot, RunsRepo } from '../store/runs-repo.ts';
import { LaunchRefusedError, type HostStatus, type Transport } from '../transports/transport.ts';
import type { CallbackServer, CycleCallback } from './callback-server.ts';
import { type Clock, Doorbell, sleepUnlessAborted } from './clock.ts';
import type { Slots } from './slots.ts';
import type { EngineTiming, RunLogEvent, RunOptions } from './types.ts';

/** Probe delays vary by ±20% so a fleet rebooted together does not probe in lock-step. */
const PROBE_JITTER_RATIO = 0.2;
/** isRunning failing this many times in a row means the agent (or its host) is gone. */
const MAX_RUNNING_CHECK_FAILURES = 3;
/** Ends an ack wait's timer: one shared reason instead of a DOMException per agent POST. */
const ACK_WAIT_OVER = Object.freeze(new Error('ack wait over'));
/** E_FAIL: used when a transport's launch fails without a scheduler HRESULT of its own. */
const E_FAIL = '0x80004005';

/** Why the run is stopping, once it is. */
export interface RunStop {
  readonly signal: AbortSignal;
  reason(): 'cancel' | 'deadline' | null;
}

type LogBody = RunLogEvent extends infer E ? (E extends RunLogEvent ? Omit<E, 'at' | 'runId' | 'host'> : never) : never;

export interface HostContext {
  readonly runId: string;
  readonly options: RunOptions;
  readonly transport: Transport;
  readonly repo: RunsRepo;
  readonly clock: Clock;
  readonly timing: EngineTiming;
  readonly server: CallbackServer;
  readonly slots: Slots;
  readonly stop: RunStop;
  readonly describe: DescribeHResult;
  readonly log: (host: string, body: LogBody) => void;
}

/** The CycleRequest for a cycle; the same values rebuild it on resume to read the agent's log. */
export function buildCycleRequest(runId: string, options: RunOptions, state: HostState, cycle: number, parts: { exclude: readonly string[]; installedEarlier: readonly string[]; offlineCabPath?: string; callback?: { url: string; token: string } }): CycleRequest {
  return {
    runId, host: state.host, cycle, mode: options.mode, reboot: options.reboot, filters: options.filters,
    exclude: parts.exclude, installedEarlier: parts.installedEarlier, serverSelection: options.serverSelection,
    ...(parts.offlineCabPath !== undefined ? { offlineCabPath: parts.offlineCabPath } : {}),
    installerBusyTimeoutSeconds: options.installerBusyTimeoutSeconds,
    ...(parts.callback ? { callback: parts.callback } : {}),
    logHandoverTimeoutSeconds: options.logHandoverTimeoutSeconds,
  };
}

export class HostDriver {
  private readonly pending: HostEvent[] = [];
  /** Agent events received on the callback and not yet applied, by seq. */
  private readonly buffer = new Map<number, AgentEvent>();
  /** Events of an agent that was stopped (cancel/deadline): recorded, not decided on. */
  private readonly late = new Map<number, AgentEvent>();
  private readonly bell: Doorbell;
  private readonly ackWaiters = new Set<() => void>();
  private callback: CycleCallback | null = null;
  private request: CycleRequest | null = null;
  private offlineCabPath: string | undefined;
  private prepared = false;
  private lastPollAtMs = 0;
  private lastAgentEventAtMs = 0;
  private lastLogPollAtMs = 0;
  private runningCheckFailures = 0;
  /** The current cycle's agent, still known while the host waits for the reboot that agent owes. */
  private lastLaunch: LaunchInfo | null = null;

  constructor(private state: HostState, private readonly ctx: HostContext) {
    this.bell = new Doorbell(ctx.clock);
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
      this.callback?.unregister();
      this.callback = null;
      for (const w of this.ackWaiters) w();
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
        throw new PatchlineError('ENGINE_STUCK', `Internal error: host ${this.state.host} is ${this.state.phase} with nothing to wait for. Resume the run; report this if it repeats.`, { exitCode: EXIT.INTERNAL, context: { run: this.ctx.runId, host: this.state.host } });
    }
  }

  /** The next agent event in seq order, or a poll of the transport while the agent runs. */
  private async watchAgent(): Promise<readonly HostEvent[]> {
    const ready = this.takeBuffered();
    if (ready.length > 0) return ready;
    const { timing, clock } = this.ctx;
    const nowMs = clock.now().getTime();
    const untilPoll = this.lastPollAtMs + timing.agentPollMs - nowMs;
    if (untilPoll > 0) {
      await this.bell.wait(untilPoll, this.ctx.stop.signal);
      return this.takeBuffered();
    }
    this.lastPollAtMs = nowMs;
    const launch = this.state.launch;
    if (!launch) return [{ kind: 'agent-gone' }];
    let running: boolean;
    try {
      running = await this.ctx.transport.isRunning(this.state.host, launch, this.ctx.stop.signal);
      this.runningCheckFailures = 0;
    } catch (error) {
      if (this.ctx.stop.signal.aborted) return [];
      // The host may be rebooting under us; after a few failures in a row treat the agent as gone.
      this.runningCheckFailures++;
      running = this.runningCheckFailures < MAX_RUNNING_CHECK_FAILURES;
      if (running) this.ctx.log(this.state.host, { kind: 'waiting-for-host', reason: 'lost-cycle', seen: 'unreachable' });
      void error;
    }
    const buffered = this.takeBuffered();
    if (buffered.length > 0) return buffered;
    if (!running) return [{ kind: 'agent-gone' }];
    const silentMs = nowMs - Math.max(this.lastAgentEventAtMs, this.lastLogPollAtMs);
    if (this.state.streamLost || silentMs >= timing.streamSilenceMs) {
      // The stream is gone (connector restarted) or silent: read whatever log the agent serves.
      this.lastLogPollAtMs = nowMs;
      const events = await this.fetchLog();
      if (events && events.some((e) => e.seq > this.state.lastSeq)) return [{ kind: 'log-fetched', events }];
    }
    return [];
  }

  /** The buffered agent events that follow the last one applied, without gaps, in seq order. */
  private takeBuffered(): HostEvent[] {
    for (const seq of [...this.buffer.keys()]) if (seq <= this.state.lastSeq) this.buffer.delete(seq);
    const out: HostEvent[] = [];
    for (let seq = this.state.lastSeq + 1; this.buffer.has(seq); seq++) {
      out.push({ kind: 'agent', event: this.buffer.get(seq)! });
      this.buffer.delete(seq);
    }
    return out;
  }

  /** The callback's sink: buffers events, answers the highest seq saved (waits briefly for it). */
  private readonly sink = async (events: readonly AgentEvent[]): Promise<number> => {
    this.lastAgentEventAtMs = this.ctx.clock.now().getTime();
    if (this.state.phase === 'cancelled' || this.state.phase === 'timed-out') {
      // A stopped agent's last words: kept for the report once it has exited (see stop-agent).
      for (const e of events) if (e.seq > this.state.lastSeq) this.late.set(e.seq, e);
      this.bell.ring();
      return Math.max(this.state.lastSeq, ...events.map((e) => e.seq));
    }
    if (!acceptsAgentEvents(this.state)) {
      // After cycle-finished (e.g. the agent's `rebooting`): keep it in the log, nothing to decide —
      // except a warning while we wait for the agent's reboot: its reboot failed (agent-run.ts).
      const fresh = events.filter((e) => e.seq > this.state.lastSeq);
      await this.ctx.repo.appendEvents(this.ctx.runId, fresh.map((e) => ({ host: this.state.host, at: this.ctx.clock.now().toISOString(), kind: 'agent', cycle: this.state.cycle, seq: e.seq, data: e })));
      for (const e of fresh) this.ctx.log(this.state.host, { kind: 'agent-event', cycle: this.state.cycle, event: e });
      const failure = fresh.find((e) => e.kind === 'warning');
      // The loop is executing this wait's probe; the event is applied right after it (in order).
      if (failure?.kind === 'warning' && awaitsAgentReboot(this.state)) this.pending.push({ kind: 'agent-reboot-failed', message: failure.message });
      return Math.max(this.state.lastSeq, ...events.map((e) => e.seq));
    }
    for (const e of events) if (e.seq > this.state.lastSeq) this.buffer.set(e.seq, e);
    let target = this.state.lastSeq;
    while (this.buffer.has(target + 1)) target++;
    this.bell.ring();
    if (this.state.lastSeq >= target) return this.state.lastSeq;
    const timeout = new AbortController();
    await new Promise<void>((resolve) => {
      const done = () => {
        this.ackWaiters.delete(check);
        timeout.abort(ACK_WAIT_OVER);
        resolve();
      };
      const check = () => {
        if (this.state.lastSeq >= target || !acceptsAgentEvents(this.state)) done();
      };
      this.ackWaiters.add(check);
      sleepUnlessAborted(this.ctx.clock, this.ctx.timing.ackWaitMs, timeout.signal).then(done, done);
    });
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
    for (const w of [...this.ackWaiters]) w();
    for (const s of steps) this.logTransition(s.before, s.event, s.result);
    await this.execute(steps.flatMap((s) => s.result.commands));
  }

  private async execute(commands: readonly HostCommand[]): Promise<void> {
    for (const command of commands) {
      const event = await this.run1(command);
      if (event) this.pending.push(event);
    }
  }

  private async run1(command: HostCommand): Promise<HostEvent | null> {
    const { transport } = this.ctx;
    const host = this.state.host;
    switch (command.kind) {
      case 'launch':
        return this.launch(command);
      case 'fetch-log':
        return { kind: 'log-fetched', events: await this.fetchLog() };
      case 'probe': {
        const jitter = 1 + (Math.random() * 2 - 1) * PROBE_JITTER_RATIO;
        if (!(await sleepUnlessAborted(this.ctx.clock, Math.round(command.delayMs * jitter), this.ctx.stop.signal))) return null;
        const status = await this.probe();
        if (!status) return null;
        if (status.reachable && status.bootId === this.state.bootIdAtLaunch) await this.checkAgentExited();
        return { kind: 'probe', reachable: status.reachable, bootId: status.bootId, servicingIdle: status.servicingIdle };
      }
      case 'reboot':
        try {
          await transport.reboot(host);
          return { kind: 'reboot-sent' };
        } catch (error) {
          return { kind: 'reboot-failed', message: (error as Error).message };
        }
      case 'stop-agent':
        try {
          await transport.stop(host, command.launch);
        } catch (error) {
          // The agent may already be gone; say so and carry on ending the host.
          this.ctx.log(host, { kind: 'agent-event', cycle: this.state.cycle, event: { seq: 0, at: this.ctx.clock.now().toISOString(), kind: 'warning', message: `stopping the agent failed: ${(error as Error).message}`, hresult: null } });
        }
        return this.drainStoppedAgent(command.launch);
      case 'finish':
        this.callback?.unregister();
        this.callback = null;
        this.ctx.log(host, { kind: 'host-finished', outcome: command.outcome, message: command.message, cycles: this.state.cycle, reboots: this.state.reboots });
        return null;
    }
  }

  /**
   * The host is up on the boot it had when the agent started, and the agent was to reboot it: if
   * that agent is gone, its reboot did not happen (it crashed, or its reboot failed and the warning
   * was lost). Queued before the probe's own event, so the state machine sees both in order.
   */
  private async checkAgentExited(): Promise<void> {
    const launch = this.lastLaunch;
    if (!launch || !awaitsAgentReboot(this.state)) return;
    let running: boolean;
    try {
      running = await this.ctx.transport.isRunning(this.state.host, launch, this.ctx.stop.signal);
    } catch (error) {
      // Cannot tell now; the next probe asks again.
      void error;
      return;
    }
    if (!running) {
      this.lastLaunch = null;
      this.pending.push({ kind: 'agent-reboot-failed', message: 'the agent exited without rebooting the host' });
    }
  }

  private async launch(command: Extract<HostCommand, { kind: 'launch' }>): Promise<HostEvent | null> {
    const { transport, stop } = this.ctx;
    const host = this.state.host;
    try {
      if (!this.prepared) {
        const prepared = await transport.prepare(host, this.ctx.options.offlineCabSource !== undefined ? { offlineCabSource: this.ctx.options.offlineCabSource } : {}, stop.signal);
        this.offlineCabPath = prepared.offlineCabPath;
        this.prepared = true;
      }
    } catch (error) {
      if (stop.signal.aborted) return null;
      return { kind: 'launch-refused', hresult: hresultOf(error), message: `preparing the target failed: ${(error as Error).message}` };
    }
    const status = await this.probe();
    if (!status) return null;
    if (!status.reachable) return { kind: 'launch-unreachable' };
    this.callback?.unregister();
    this.buffer.clear();
    this.callback = this.ctx.server.register(this.sink);
    this.request = buildCycleRequest(this.ctx.runId, this.ctx.options, this.state, command.cycle, {
      exclude: command.exclude, installedEarlier: command.installedEarlier,
      ...(this.offlineCabPath !== undefined ? { offlineCabPath: this.offlineCabPath } : {}),
      callback: { url: this.callback.url, token: this.callback.token },
    });
    try {
      // Not the stop signal: a launch cut half-way would leave an agent we do not know about.
      // The state machine stops the agent once the launch has answered.
      const launched = await transport.launch(host, this.request, AbortSignal.timeout(this.ctx.timing.launchTimeoutMs));
      const nowMs = this.ctx.clock.now().getTime();
      this.lastAgentEventAtMs = nowMs;
      this.lastPollAtMs = nowMs;
      this.lastLaunch = { taskId: launched.taskId, pid: launched.pid };
      return { kind: 'launched', taskId: launched.taskId, pid: launched.pid, bootId: status.bootId };
    } catch (error) {
      // The host went down between the probe and the launch: wait for it like any unreachable host.
      if (error instanceof PatchlineError && error.exitCode === EXIT.UNREACHABLE) return { kind: 'launch-unreachable' };
      return { kind: 'launch-refused', hresult: hresultOf(error), message: (error as Error).message };
    }
  }

  private async probe(): Promise<HostStatus | null> {
    try {
      return await this.ctx.transport.probe(this.state.host, this.ctx.stop.signal);
    } catch (error) {
      if (this.ctx.stop.signal.aborted) return null;
      // probe() should not throw for an unreachable host; if it does, that is what it means.
      void error;
      return { reachable: false, bootId: null, servicingIdle: false };
    }
  }

  /**
   * Waits (bounded) for a stopped agent to exit, then returns what it did before stopping — from
   * the callback, or from its log — so the report lists an update it installed just before.
   */
  private async drainStoppedAgent(launch: LaunchInfo): Promise<HostEvent | null> {
    const drain = AbortSignal.timeout(this.ctx.timing.stopDrainMs);
    while (!drain.aborted) {
      let running: boolean;
      try {
        running = await this.ctx.transport.isRunning(this.state.host, launch, drain);
      } catch (error) {
        // Cannot tell (host down, timeout): stop waiting; what the callback brought is kept.
        void error;
        running = false;
      }
      if (!running) break;
      await this.bell.wait(this.ctx.timing.agentPollMs, drain);
    }
    // Events that arrived before the stop but were not applied yet count as late too.
    const late = [...this.buffer.values(), ...this.late.values()];
    this.buffer.clear();
    this.late.clear();
    const finished = late.some((e) => e.kind === 'cycle-finished');
    const fetched = finished ? null : await this.fetchLog(AbortSignal.timeout(this.ctx.timing.stopDrainMs));
    const events = [...new Map([...late, ...(fetched ?? [])].map((e) => [e.seq, e])).values()];
    return events.length > 0 ? { kind: 'log-fetched', events } : null;
  }

  private async fetchLog(signal?: AbortSignal): Promise<readonly AgentEvent[] | null> {
    const state = this.state;
    const request = this.request?.cycle === state.cycle ? this.request
      : buildCycleRequest(this.ctx.runId, this.ctx.options, state, state.cycle, { exclude: [], installedEarlier: [], ...(this.offlineCabPath !== undefined ? { offlineCabPath: this.offlineCabPath } : {}) });
    try {
      return await this.ctx.transport.fetchLog(state.host, request, signal ?? AbortSignal.any([this.ctx.stop.signal, AbortSignal.timeout(Math.max(this.ctx.timing.launchTimeoutMs, 1000))]));
    } catch (error) {
      if (!signal && this.ctx.stop.signal.aborted) return null;
      // No log to be had is a normal outcome (the state machine counts the cycle lost).
      void error;
      return null;
    }
  }

  // ── the live log ───────────────────────────────────────────────────────────────────────────

  private logTransition(before: HostState, event: HostEvent, result: StepResult): void {
    const host = before.host;
    const after = result.state;
    const log = (body: LogBody) => this.ctx.log(host, body);
    switch (event.kind) {
      case 'launched':
        if (after.phase === 'running') log({ kind: 'cycle-launched', cycle: after.cycle, taskId: event.taskId, pid: event.pid, bootId: event.bootId });
        break;
      case 'launch-refused':
        log({ kind: 'launch-refused', cycle: before.cycle, hresult: event.hresult, message: event.message });
        break;
      case 'launch-unreachable':
        log({ kind: 'waiting-for-host', reason: 'unreachable-at-launch', seen: 'unreachable' });
        break;
      case 'agent':
        if (event.event.seq > before.lastSeq) log({ kind: 'agent-event', cycle: before.cycle, event: event.event });
        break;
      case 'log-fetched':
        log({ kind: 'log-fetched', cycle: before.cycle, events: event.events?.length ?? 0 });
        for (const e of [...(event.events ?? [])].sort((a, b) => a.seq - b.seq)) {
          if (e.seq > before.lastSeq) log({ kind: 'agent-event', cycle: before.cycle, event: e });
        }
        break;
      default:
        break;
    }
    for (const note of result.notes) this.logNote(after, note, log);
  }

  private logNote(after: HostState, note: HostNote, log: (body: LogBody) => void): void {
    switch (note.kind) {
      case 'reboot-started':
        log({ kind: 'reboot-started', cycle: after.cycle, by: note.by, reason: note.reason });
        break;
      case 'host-back':
        log({ kind: 'host-back', bootId: note.bootId, afterMs: note.afterMs });
        break;
      case 'waiting-for-host':
        log({ kind: 'waiting-for-host', reason: note.reason, seen: note.seen });
        break;
      case 'stream-lost':
        log({ kind: 'stream-lost', cycle: note.cycle });
        break;
      case 'cycle-lost':
        log({ kind: 'cycle-lost', cycle: note.cycle, reason: note.reason });
        break;
      case 'update-failed': {
        const u = after.updates[note.updateId];
        const d = note.hresult ? this.ctx.describe(note.hresult) : null;
        log({ kind: 'update-failed', updateId: note.updateId, label: u ? `${updateName(u)} ${u.kb ? u.title : ''}`.trim() : note.updateId, hresult: note.hresult, hresultName: d?.name ?? null, meaning: d?.meaning ?? null, attempts: note.attempts, final: note.final });
        break;
      }
      case 'loop-detected': {
        const first = after.updates[note.updateIds[0] ?? ''];
        log({ kind: 'loop-detected', updateIds: note.updateIds, message: first?.message ?? 'update loop detected' });
        break;
      }
      case 'ignored':
        break;
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

/** An agent `progress` event applied while the cycle runs: no command, no note, no phase change. */
function isProgressOnly(event: HostEvent, result: StepResult): boolean {
  return event.kind === 'agent' && event.event.kind === 'progress' && result.commands.length === 0 && result.notes.length === 0 && result.state.phase === 'running';
}

/** Waiting for the reboot the cycle's agent said it would do, with no failure of it known yet. */
function awaitsAgentReboot(state: HostState): boolean {
  return state.phase === 'rebooting' && state.wait?.reason === 'reboot' && state.wait.by === 'agent' && !state.wait.agentRebootFailed;
}

function hresultOf(error: unknown): string {
  if (error instanceof LaunchRefusedError) return error.hresult;
  return E_FAIL;
}

/** The host row and the updates this transition changed. */
function snapshot(before: HostState, after: HostState): HostSnapshot {
  const updates = Object.values(after.updates)
    .filter((u) => before.updates[u.updateId] !== u)
    .map((u) => ({ updateId: u.updateId, kb: u.kb, title: u.title, result: u.result, hresult: u.hresult, attempts: u.attempts, cycle: u.cycle, message: u.message }));
  return { host: after.host, phase: after.phase, cycle: after.cycle, reboots: after.reboots, message: after.message, stateJson: JSON.stringify(after), updates };
}

/** What the event log keeps of one transition: the input event, the notes, the phase change. */
function transitionRows(before: HostState, event: HostEvent, result: StepResult, now: Date): EventRow[] {
  const at = now.toISOString();
  const host = before.host;
  const rows: EventRow[] = [];
  if (event.kind === 'agent') rows.push({ host, at, kind: 'agent', cycle: before.cycle, seq: event.event.seq, data: event.event });
  else rows.push({ host, at, kind: event.kind, cycle: before.cycle, seq: null, data: event });
  for (const note of result.notes) if (note.kind !== 'ignored') rows.push({ host, at, kind: `note:${note.kind}`, cycle: result.state.cycle, seq: null, data: note });
  if (before.phase !== result.state.phase) rows.push({ host, at, kind: 'transition', cycle: result.state.cycle, seq: null, data: { from: before.phase, to: result.state.phase, message: result.state.message } });
  return rows;
}
