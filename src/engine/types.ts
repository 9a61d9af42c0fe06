/**
 * The engine's public types: run options (persisted with the run), dependencies, the result, and
 * `RunLogEvent` — one value per thing the live log shows, for a readable line or NDJSON.
 */
import type { AgentEvent, CycleRequest, Mode, RebootPolicy } from '../domain/agent-log.ts';
import { DEFAULT_AGENT_REBOOT_GRACE_MS, type HostOutcome, type WaitReason, type HostWait } from '../domain/cycle.ts';
import type { UpdateFilters } from '../domain/filters.ts';
import type { RunOutcome, RunReport } from '../domain/report.ts';
import type { ExitCode } from '../domain/errors.ts';
import type { Store } from '../store/db.ts';
import type { Transport, TransportFailureKind } from '../transports/transport.ts';
import type { Clock } from './clock.ts';

const MINUTE_MS = 60_000;

/** --max-cycles: a servicing stack → CU → .NET chain needs 3; 5 leaves room for a retry. */
export const DEFAULT_MAX_CYCLES = 5;
/** --retries: like Ansible's win_updates, one more attempt after a reboot. */
export const DEFAULT_RETRIES = 1;
/** --reboot-timeout: Server 2016 CUs can take 15–30 min to finish servicing; Ansible's win_updates uses 20 min. */
export const DEFAULT_REBOOT_TIMEOUT_MS = 20 * MINUTE_MS;
export const DEFAULT_PARALLEL = 10;
/** The least reboot timeout a lab run gets: an agent starting in the lab takes seconds of real time whatever the timeScale. */
export const LAB_MIN_REBOOT_TIMEOUT_MS = MINUTE_MS;

/**
 * The default --reboot-timeout for a lab scenario: the real-server default, shrunk like every
 * simulated duration by the scenario's timeScale (a lost host of faults.yaml at timeScale 0.02 is
 * given up after a minute, not 20), never below LAB_MIN_REBOOT_TIMEOUT_MS. An explicit
 * --reboot-timeout always wins.
 *
 * @example labRebootTimeoutMs(0.02) // 60_000 (24 s scaled, raised to the minimum)
 */
export function labRebootTimeoutMs(timeScale: number): number {
  if (!(timeScale > 0)) return DEFAULT_REBOOT_TIMEOUT_MS;
  return Math.max(
    LAB_MIN_REBOOT_TIMEOUT_MS,
    Math.min(DEFAULT_REBOOT_TIMEOUT_MS, Math.round(DEFAULT_REBOOT_TIMEOUT_MS * timeScale)),
  );
}

export interface RunOptions {
  /** The run's id when the caller needs it before the run starts (e.g. to name a directory); default newRunId(). */
  readonly runId?: string;
  readonly targets: readonly string[];
  readonly mode: Mode;
  readonly reboot: RebootPolicy;
  readonly filters: UpdateFilters;
  readonly maxCycles: number;
  readonly retries: number;
  readonly rebootTimeoutMs: number;
  /** No new cycle after it; running agents are stopped; hosts end timed-out (exit 4). */
  readonly deadlineAt: Date | null;
  /** Hosts patched at once; --serial is 1. */
  readonly parallel: number;
  readonly serverSelection: CycleRequest['serverSelection'];
  /** Local wsusscn2.cab to hand to each target when serverSelection is offline. */
  readonly offlineCabSource?: string;
  readonly installerBusyTimeoutSeconds: number;
  readonly logHandoverTimeoutSeconds: number;
  /**
   * Anything the caller needs to rebuild its side on resume (the CLI: which transport, the lab
   * scenario and dir, the report file). Saved with the run, JSON only; the engine ignores it.
   */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** How often the engine looks at things. Defaults suit real hosts; tests shrink them. */
export interface EngineTiming {
  /** First delay between probes while a host reboots; doubles up to probeMaxDelayMs (plus ±20% jitter). */
  readonly probeInitialDelayMs: number;
  readonly probeMaxDelayMs: number;
  /** How often to ask the transport whether a cycle's agent still runs. */
  readonly agentPollMs: number;
  /** No event on the callback for this long (or the stream is known lost): try the agent's log. */
  readonly streamSilenceMs: number;
  /** Upper bound for one launch through the target's task scheduler. */
  readonly launchTimeoutMs: number;
  /** How long an agent's POST waits for its events to be saved before it is answered. */
  readonly ackWaitMs: number;
  /** After a cancel or the deadline, how long to wait for a stopped agent to exit and hand over its log. */
  readonly stopDrainMs: number;
  /**
   * The agent said its reboot failed (or exited without rebooting): if the host still shows the
   * same boot id this long after, the engine reboots it through the transport.
   */
  readonly agentRebootGraceMs: number;
}

export const DEFAULT_TIMING: EngineTiming = {
  probeInitialDelayMs: 5_000,
  probeMaxDelayMs: 60_000,
  agentPollMs: 5_000,
  streamSilenceMs: 60_000,
  launchTimeoutMs: 2 * MINUTE_MS,
  ackWaitMs: 10_000,
  // WUA aborts an install between updates; a stopped agent is normally gone within seconds.
  stopDrainMs: 20_000,
  // A Windows shutdown already under way takes the host off the network within this.
  agentRebootGraceMs: DEFAULT_AGENT_REBOOT_GRACE_MS,
};

export interface EngineDeps {
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: (e: RunLogEvent) => void;
  /** Address the callback server listens on and agents post to. Default 127.0.0.1. */
  readonly callbackHost?: string;
  readonly timing?: Partial<EngineTiming>;
}

export interface RunResult {
  readonly runId: string;
  readonly report: RunReport;
  readonly exitCode: ExitCode;
}

interface LogBase {
  /** ISO-8601 UTC. */
  readonly at: string;
  readonly runId: string;
  readonly host?: string;
}

/** Everything the live log shows. `kind` discriminates; every field is JSON. */
export type RunLogEvent = LogBase &
  (
    | {
        readonly kind: 'run-started';
        readonly resumed: boolean;
        readonly targets: readonly string[];
        readonly mode: Mode;
        readonly reboot: RebootPolicy;
        readonly parallel: number;
        readonly maxCycles: number;
        readonly retries: number;
        readonly rebootTimeoutMs: number;
        readonly deadlineAt: string | null;
      }
    | {
        readonly kind: 'cycle-launched';
        readonly cycle: number;
        readonly taskId: string;
        readonly pid: number;
        readonly bootId: string | null;
      }
    | { readonly kind: 'launch-refused'; readonly cycle: number; readonly hresult: string; readonly message: string }
    | { readonly kind: 'agent-event'; readonly cycle: number; readonly event: AgentEvent }
    | { readonly kind: 'stream-lost'; readonly cycle: number }
    | { readonly kind: 'log-fetched'; readonly cycle: number; readonly events: number }
    | { readonly kind: 'cycle-lost'; readonly cycle: number; readonly reason: string }
    | {
        readonly kind: 'reboot-started';
        readonly cycle: number;
        readonly by: 'agent' | 'engine';
        readonly reason: string;
      }
    | { readonly kind: 'waiting-for-host'; readonly reason: WaitReason; readonly seen: HostWait['lastSeen'] }
    /** About every minute while a host is waited for ("still waiting for lost01: 5m of 20m"). */
    | {
        readonly kind: 'still-waiting';
        readonly waitingFor: string;
        readonly reason: WaitReason;
        readonly seen: HostWait['lastSeen'];
        readonly waitedMs: number;
        readonly timeoutMs: number;
      }
    /** A transport call failed for a reason other than the host being away; `cause` is the original error chain. */
    | {
        readonly kind: 'transport-error';
        readonly op: string;
        readonly failure: TransportFailureKind;
        readonly message: string;
        readonly cause: string | null;
      }
    | { readonly kind: 'host-back'; readonly bootId: string | null; readonly afterMs: number }
    | {
        readonly kind: 'update-failed';
        readonly updateId: string;
        readonly label: string;
        readonly hresult: string | null;
        readonly hresultName: string | null;
        readonly meaning: string | null;
        readonly attempts: number;
        readonly final: boolean;
      }
    | { readonly kind: 'loop-detected'; readonly updateIds: readonly string[]; readonly message: string }
    | {
        readonly kind: 'host-finished';
        readonly outcome: HostOutcome;
        readonly message: string | null;
        readonly cycles: number;
        readonly reboots: number;
      }
    | { readonly kind: 'stop-requested'; readonly reason: 'cancel' | 'deadline' }
    | {
        readonly kind: 'run-finished';
        readonly outcome: RunOutcome;
        readonly exitCode: ExitCode;
        readonly hosts: Readonly<Partial<Record<HostOutcome, number>>>;
      }
  );

export type RunLogKind = RunLogEvent['kind'];
