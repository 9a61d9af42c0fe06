/**
 * What the connector asks an agent to do in one cycle, and the log the agent writes back.
 *
 * The engine writes a CycleRequest (as JSON, in a file the agent can read on the target) and
 * starts `patchline agent cycle --request FILE` through the target's task scheduler. The agent
 * answers with AgentEvents: streamed as they happen (HTTP callback), kept in memory, and served
 * whole at the end (named pipe / Unix socket) so a connector that lost the stream can fetch it.
 */
import type { UpdateFilters } from './filters.ts';
import type { UpdateRecord } from './update.ts';

export const MODES = ['scan', 'download', 'install'] as const;
/** scan: report only, change nothing; download: also download; install: download and install. */
export type Mode = (typeof MODES)[number];

export const REBOOT_POLICIES = ['never', 'if-required', 'always'] as const;
export type RebootPolicy = (typeof REBOOT_POLICIES)[number];

export interface CycleRequest {
  readonly runId: string;
  readonly host: string;
  /** 1-based cycle number within the run for this host. */
  readonly cycle: number;
  readonly mode: Mode;
  readonly reboot: RebootPolicy;
  readonly filters: UpdateFilters;
  /** Update ids the engine has given up on (retries used up, loop detected): never install them. */
  readonly exclude: readonly string[];
  /** Update ids installed successfully in earlier cycles of this run (for loop detection). */
  readonly installedEarlier: readonly string[];
  readonly serverSelection: 'default' | 'managedServer' | 'windowsUpdate' | 'microsoftUpdate' | 'offline';
  /** Local path of wsusscn2.cab on the target, when serverSelection is offline. */
  readonly offlineCabPath?: string;
  /** How long to wait for a busy installer (another install running) before giving up. */
  readonly installerBusyTimeoutSeconds: number;
  /** HTTP callback for live events; the token authenticates this one cycle and is never logged. */
  readonly callback?: { readonly url: string; readonly token: string };
  /** Where the agent serves its whole log at the end: a named pipe on Windows, a Unix socket elsewhere. */
  readonly pipePath?: string;
  /**
   * A file the agent appends every event to as a JSON line, as it happens (the SSH transport reads
   * it by byte offset when the target cannot reach the callback; it survives dropped connections).
   */
  readonly logFile?: string;
  /** How long the agent waits for someone to take the log before it writes it to disk and goes on. */
  readonly logHandoverTimeoutSeconds: number;
}

export type UpdateResultCode = 'notStarted' | 'inProgress' | 'succeeded' | 'succeededWithErrors' | 'failed' | 'aborted';

/** How a cycle ended, from the agent's side. */
export const CYCLE_OUTCOMES = [
  /** Nothing matching the filters is left (install), or the scan/download completed. */
  'done',
  /** Updates were installed and a reboot is needed before more can be done. */
  'reboot-required',
  /** A reboot was pending at start; nothing installed. */
  'reboot-pending',
  /** Some update failed and nothing more can be done in this cycle (no reboot needed). */
  'failed',
  /** An update that was installed came back: silent rollback or a detection that never sticks. */
  'loop-detected',
  /** The cycle was aborted (SIGTERM/SIGINT, connector cancel). */
  'aborted',
  /** The provider or the agent itself failed (crash, garbage, timeout). */
  'error',
] as const;
export type CycleOutcome = (typeof CYCLE_OUTCOMES)[number];

interface Base {
  /** 1-based, strictly increasing within one cycle's log. */
  readonly seq: number;
  /** ISO-8601 UTC. */
  readonly at: string;
}

export type AgentEvent = Base &
  (
    | {
        readonly kind: 'cycle-started';
        readonly runId: string;
        readonly host: string;
        readonly cycle: number;
        readonly pid: number;
        readonly provider: string;
        readonly agentVersion: string;
      }
    | {
        readonly kind: 'preflight';
        readonly rebootRequired: boolean;
        readonly installerBusy: boolean;
        readonly lastBootUpTime: string;
      }
    | { readonly kind: 'waiting'; readonly reason: 'installer-busy'; readonly seconds: number }
    | {
        readonly kind: 'scan-result';
        readonly pass: number;
        readonly found: readonly UpdateRecord[];
        readonly selected: readonly string[];
        readonly skipped: readonly { readonly updateId: string; readonly reason: string }[];
      }
    | {
        readonly kind: 'progress';
        readonly phase: 'search' | 'download' | 'install';
        readonly updateId: string | null;
        readonly percent: number;
        readonly bytes?: number;
        readonly totalBytes?: number;
      }
    | {
        readonly kind: 'update-result';
        readonly phase: 'download' | 'install';
        readonly updateId: string;
        readonly resultCode: UpdateResultCode;
        readonly hresult: string | null;
        readonly rebootRequired: boolean;
      }
    | { readonly kind: 'loop-detected'; readonly updateIds: readonly string[] }
    | { readonly kind: 'warning'; readonly message: string; readonly hresult: string | null }
    | {
        readonly kind: 'cycle-finished';
        readonly outcome: CycleOutcome;
        readonly rebootRequired: boolean;
        readonly willReboot: boolean;
        readonly message: string | null;
        readonly hresult: string | null;
      }
    | { readonly kind: 'rebooting' }
  );

export type AgentEventKind = AgentEvent['kind'];
/** An event before the agent stamped seq and at. */
export type AgentEventBody = AgentEvent extends infer E ? (E extends Base ? Omit<E, keyof Base> : never) : never;
