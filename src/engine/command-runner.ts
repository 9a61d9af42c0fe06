/**
 * Executes one host's commands through its transport and turns each answer into the event the
 * state machine takes next (launch → launched / launch-unreachable / launch-refused, probe → probe,
 * …). It also owns what a cycle needs beyond the state: whether the target was prepared, the
 * cycle's request and callback, and the agent that still owes a reboot.
 *
 * Every transport failure is classified (transports/transport.ts) and handled in one place,
 * `onFailure`: unreachable → the host is waited for; auth / host-key → the host ends at once with
 * the transport's message; refused → the launch was refused; anything else is an internal error
 * that stops the run with exit 70, its cause kept and logged. Nothing is swallowed.
 */
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import {
  type HostCommand,
  type HostEvent,
  type HostState,
  type LaunchInfo,
  awaitsAgentReboot,
} from '../domain/cycle.ts';
import { EXIT, PatchlineError } from '../domain/errors.ts';
import {
  LaunchRefusedError,
  transportFailureOf,
  type HostStatus,
  type TransportFailureKind,
} from '../transports/transport.ts';
import type { CycleCallback, EventSink } from './callback-server.ts';
import { clockTimeout, sleepUnlessAborted } from './clock.ts';
import { buildCycleRequest, type HostContext } from './host-context.ts';

/** Probe delays vary by ±20% so a fleet rebooted together does not probe in lock-step. */
const PROBE_JITTER_RATIO = 0.2;
/** E_FAIL: used when a transport's launch fails without a scheduler HRESULT of its own. */
const E_FAIL = '0x80004005';

/** The transport operations, as named in logs and errors. */
export type TransportOp = 'prepare' | 'launch' | 'probe' | 'is-running' | 'fetch-log' | 'stop' | 'reboot';

/** What the runner needs of its driver: the current state, the inbox to reset, a way to wait. */
export interface RunnerHost {
  current(): HostState;
  /** A new cycle's callback is about to be registered: forget the previous cycle's events. */
  newCycle(): void;
  /** Waits up to `ms`, or until an agent event arrives or `signal` aborts. */
  pause(ms: number, signal: AbortSignal): Promise<void>;
  /** Events this runner found outside a command's own answer (applied right after it). */
  queue(event: HostEvent): void;
  /** A stopped agent's events not applied: taken out of the inbox. */
  leftovers(): AgentEvent[];
  readonly sink: EventSink;
}

/** A classified failure that does not stop the run: the host waits (`unreachable`) or ends. */
type Handled = { readonly kind: 'unreachable' } | { readonly kind: 'refused'; readonly event: HostEvent };

export class CommandRunner {
  private callback: CycleCallback | null = null;
  private request: CycleRequest | null = null;
  private offlineCabPath: string | undefined;
  private prepared = false;
  /** The current cycle's agent, still known while the host waits for the reboot that agent owes. */
  private lastLaunch: LaunchInfo | null = null;
  /** When the current cycle's agent was launched (ms on the run's clock). */
  launchedAtMs = 0;

  constructor(
    private readonly ctx: HostContext,
    private readonly host: RunnerHost,
  ) {}

  private get name(): string {
    return this.host.current().host;
  }

  /** Executes one command; its answer as the next event, or null when there is none (stopped). */
  async run(command: HostCommand): Promise<HostEvent | null> {
    switch (command.kind) {
      case 'launch':
        return this.launch(command);
      case 'fetch-log':
        return { kind: 'log-fetched', events: await this.fetchLog() };
      case 'probe': {
        const jitter = 1 + (Math.random() * 2 - 1) * PROBE_JITTER_RATIO;
        if (!(await sleepUnlessAborted(this.ctx.clock, Math.round(command.delayMs * jitter), this.ctx.stop.signal)))
          return null;
        const status = await this.probe();
        if (status === null) return null;
        if ('kind' in status) return status;
        const state = this.host.current();
        if (status.reachable && status.bootId === state.bootIdAtLaunch) await this.checkAgentExited();
        return {
          kind: 'probe',
          reachable: status.reachable,
          bootId: status.bootId,
          servicingIdle: status.servicingIdle,
        };
      }
      case 'reboot':
        try {
          await this.ctx.transport.reboot(this.name);
          return { kind: 'reboot-sent' };
        } catch (error) {
          const handled = this.onFailure('reboot', error);
          if (handled.kind === 'refused') return handled.event;
          return { kind: 'reboot-failed', message: (error as Error).message };
        }
      case 'stop-agent':
        try {
          await this.ctx.transport.stop(this.name, command.launch);
        } catch (error) {
          // The agent may already be gone (or its host away): logged by onFailure; carry on ending the host.
          this.onFailure('stop', error, true);
        }
        return this.drainStoppedAgent(command.launch);
      case 'finish':
        this.unregister();
        return null;
    }
  }

  /** Is the cycle's agent still running? null: cannot tell now (host away); an event: the host was refused. */
  async isRunning(launch: LaunchInfo): Promise<boolean | null | HostEvent> {
    try {
      return await this.ctx.transport.isRunning(this.name, launch, this.ctx.stop.signal);
    } catch (error) {
      if (this.ctx.stop.signal.aborted) return null;
      const handled = this.onFailure('is-running', error);
      return handled.kind === 'refused' ? handled.event : null;
    }
  }

  /** The whole log of the current cycle from the agent; null when there is none to be had. */
  async fetchLog(signal?: AbortSignal): Promise<readonly AgentEvent[] | null> {
    const state = this.host.current();
    const request =
      this.request?.cycle === state.cycle
        ? this.request
        : buildCycleRequest(this.ctx.runId, this.ctx.options, state, state.cycle, {
            exclude: [],
            installedEarlier: [],
            ...(this.offlineCabPath !== undefined ? { offlineCabPath: this.offlineCabPath } : {}),
          });
    try {
      return await this.ctx.transport.fetchLog(
        state.host,
        request,
        signal ??
          AbortSignal.any([this.ctx.stop.signal, AbortSignal.timeout(Math.max(this.ctx.timing.launchTimeoutMs, 1000))]),
      );
    } catch (error) {
      if (!signal && this.ctx.stop.signal.aborted) return null;
      // No log to be had is a normal outcome (the state machine counts the cycle lost); a refusal
      // is logged here and ends the host at its next probe or poll.
      this.onFailure('fetch-log', error, true);
      return null;
    }
  }

  /** Stops taking the current cycle's events on the callback. Idempotent. */
  unregister(): void {
    this.callback?.unregister();
    this.callback = null;
  }

  /**
   * Classifies a transport failure and logs any that is not a host simply being away. Internal
   * errors stop the run: thrown as TRANSPORT_INTERNAL (exit 70) with the transport's error as
   * cause. `quiet`: the caller only needs it logged (stop, a log fetch), not turned into an event.
   */
  private onFailure(op: TransportOp, error: unknown, quiet = false): Handled {
    const failure: TransportFailureKind = transportFailureOf(error);
    const host = this.name;
    const message = error instanceof Error ? error.message : String(error);
    if (failure !== 'unreachable' || quiet) {
      const cause =
        error instanceof Error && error.cause !== undefined
          ? describeCause(error.cause)
          : failure === 'internal'
            ? describeCause(error)
            : null;
      this.ctx.log(host, { kind: 'transport-error', op, failure, message, cause });
    }
    if (failure === 'internal') {
      throw new PatchlineError(
        'TRANSPORT_INTERNAL',
        `The ${this.ctx.transport.name} transport failed unexpectedly on ${host} (${op}): ${message}. This is a fault in Patchline or the transport, not in the host; report it with the log. The run stopped and can be resumed.`,
        { exitCode: EXIT.INTERNAL, cause: error, context: { run: this.ctx.runId, host, op } },
      );
    }
    if (failure === 'unreachable') return { kind: 'unreachable' };
    if (failure === 'refused') {
      const hresult = error instanceof LaunchRefusedError ? error.hresult : E_FAIL;
      if (op === 'launch' || op === 'prepare')
        return {
          kind: 'refused',
          event: {
            kind: 'launch-refused',
            hresult,
            message: op === 'prepare' ? `preparing the target failed: ${message}` : message,
          },
        };
    }
    return {
      kind: 'refused',
      event: { kind: 'host-refused', failure: failure === 'refused' ? 'refused' : failure, message },
    };
  }

  /**
   * The host is up on the boot it had when the agent started, and the agent was to reboot it: if
   * that agent is gone, its reboot did not happen (it crashed, or its reboot failed and the warning
   * was lost). Queued before the probe's own event, so the state machine sees both in order.
   */
  private async checkAgentExited(): Promise<void> {
    const launch = this.lastLaunch;
    if (!launch || !awaitsAgentReboot(this.host.current())) return;
    const running = await this.isRunning(launch);
    // Cannot tell now (null): the next probe asks again.
    if (running === null || running === true) return;
    if (running === false) {
      this.lastLaunch = null;
      this.host.queue({ kind: 'agent-reboot-failed', message: 'the agent exited without rebooting the host' });
      return;
    }
    this.host.queue(running);
  }

  private async launch(command: Extract<HostCommand, { kind: 'launch' }>): Promise<HostEvent | null> {
    const { transport, stop } = this.ctx;
    const state = this.host.current();
    const host = state.host;
    try {
      if (!this.prepared) {
        const prepared = await transport.prepare(
          host,
          this.ctx.options.offlineCabSource !== undefined
            ? { offlineCabSource: this.ctx.options.offlineCabSource }
            : {},
          stop.signal,
        );
        this.offlineCabPath = prepared.offlineCabPath;
        this.prepared = true;
      }
    } catch (error) {
      if (stop.signal.aborted) return null;
      const handled = this.onFailure('prepare', error);
      return handled.kind === 'unreachable' ? { kind: 'launch-unreachable' } : handled.event;
    }
    const status = await this.probe();
    if (status === null) return null;
    if ('kind' in status) return status;
    if (!status.reachable) return { kind: 'launch-unreachable' };
    this.unregister();
    this.host.newCycle();
    this.callback = this.ctx.server.register(this.host.sink);
    this.request = buildCycleRequest(this.ctx.runId, this.ctx.options, state, command.cycle, {
      exclude: command.exclude,
      installedEarlier: command.installedEarlier,
      ...(this.offlineCabPath !== undefined ? { offlineCabPath: this.offlineCabPath } : {}),
      callback: { url: this.callback.url, token: this.callback.token },
    });
    try {
      // Not the stop signal: a launch cut half-way would leave an agent we do not know about.
      // The state machine stops the agent once the launch has answered.
      const launched = await transport.launch(host, this.request, AbortSignal.timeout(this.ctx.timing.launchTimeoutMs));
      this.launchedAtMs = this.ctx.clock.now().getTime();
      this.lastLaunch = { taskId: launched.taskId, pid: launched.pid };
      return { kind: 'launched', taskId: launched.taskId, pid: launched.pid, bootId: status.bootId };
    } catch (error) {
      // The host went down between the probe and the launch: wait for it like any unreachable host.
      const handled = this.onFailure('launch', error);
      return handled.kind === 'unreachable' ? { kind: 'launch-unreachable' } : handled.event;
    }
  }

  /** The host's status; null when the run is stopping; an event when the target refused us. */
  private async probe(): Promise<HostStatus | HostEvent | null> {
    try {
      return await this.ctx.transport.probe(this.name, this.ctx.stop.signal);
    } catch (error) {
      if (this.ctx.stop.signal.aborted) return null;
      const handled = this.onFailure('probe', error);
      return handled.kind === 'unreachable' ? { reachable: false, bootId: null, servicingIdle: false } : handled.event;
    }
  }

  /**
   * Waits (bounded) for a stopped agent to exit, then returns what it did before stopping — from
   * the callback, or from its log — so the report lists an update it installed just before.
   */
  private async drainStoppedAgent(launch: LaunchInfo): Promise<HostEvent | null> {
    const drain = clockTimeout(this.ctx.clock, this.ctx.timing.stopDrainMs);
    try {
      while (!drain.signal.aborted) {
        let running: boolean;
        try {
          running = await this.ctx.transport.isRunning(this.name, launch, drain.signal);
        } catch (error) {
          // Cannot tell (host down, timeout, refused): stop waiting; what the callback brought is kept.
          if (!drain.signal.aborted) this.onFailure('is-running', error, true);
          running = false;
        }
        if (!running) break;
        await this.host.pause(this.ctx.timing.agentPollMs, drain.signal);
      }
    } finally {
      drain.clear();
    }
    // Events that arrived before the stop but were not applied yet count as late too.
    const late = this.host.leftovers();
    const finished = late.some((e) => e.kind === 'cycle-finished');
    const fetched = finished ? null : await this.fetchLog(AbortSignal.timeout(this.ctx.timing.stopDrainMs));
    const events = [...new Map([...late, ...(fetched ?? [])].map((e) => [e.seq, e])).values()];
    return events.length > 0 ? { kind: 'log-fetched', events } : null;
  }
}

/** One line for a cause chain: "TypeError: x is undefined ← Error: connect ECONNRESET". */
export function describeCause(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' ← ');
}
