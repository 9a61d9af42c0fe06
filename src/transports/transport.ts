/**
 * How the engine reaches a target (DESIGN.md §5). One interface, several implementations:
 * `lab` (virtual hosts), later `ssh`, `windows` (schtasks + share + pipe) and `agent`.
 *
 * Per cycle the engine calls: prepare → launch (the target's task scheduler starts
 * `patchline agent cycle` as SYSTEM, at once) → events arrive on the engine's callback
 * → if the stream was lost, fetchLog → the agent reboots the host itself once its log is safe →
 * probe until the boot id changed → next cycle.
 */
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';

export interface HostStatus {
  /** The transport answered. */
  readonly reachable: boolean;
  /** Changes on every boot (LastBootUpTime); null when unreachable. */
  readonly bootId: string | null;
  /** Component servicing is idle (CBS ServicingInProgress absent/0/1); false while a reboot finishes. */
  readonly servicingIdle: boolean;
}

export interface LaunchResult {
  /** The scheduler's task name or id (deleted once started). */
  readonly taskId: string;
  /** The agent's process id on the target. */
  readonly pid: number;
}

/** The target's task scheduler refused to start the agent; carries the scheduler's own error. */
export class LaunchRefusedError extends Error {
  override readonly name = 'LaunchRefusedError';
  constructor(readonly host: string, readonly hresult: string, message: string) {
    super(message);
  }
}

export interface Transport {
  readonly name: string;
  /** Checks that every target is known/reachable by name; throws a usage error naming the unknown ones. */
  resolveTargets(names: readonly string[]): Promise<readonly string[]>;
  /** Every target this transport knows (the lab: every host of the scenario). */
  listTargets(): Promise<readonly string[]>;
  /** Makes the client and any input (offline cab) available on the target. Idempotent. */
  prepare(host: string, input: { readonly offlineCabSource?: string }, signal: AbortSignal): Promise<{ readonly offlineCabPath?: string }>;
  /** Starts the agent for one cycle through the target's task scheduler, as SYSTEM, now. */
  launch(host: string, request: CycleRequest, signal: AbortSignal): Promise<LaunchResult>;
  /** Is the host up, and which boot is it in? Never throws for an unreachable host. */
  probe(host: string, signal: AbortSignal): Promise<HostStatus>;
  /** Fetches the whole log of a cycle from the agent's pipe (or the file it left); null if gone. */
  fetchLog(host: string, request: CycleRequest, signal: AbortSignal): Promise<readonly AgentEvent[] | null>;
  /** Is the agent of this launch still running? */
  isRunning(host: string, launch: LaunchResult, signal: AbortSignal): Promise<boolean>;
  /** Asks the agent to stop (it aborts running WUA operations and reports `aborted`). */
  stop(host: string, launch: LaunchResult): Promise<void>;
  /** Reboots the host (used when a pending reboot must be cleared and no agent runs). */
  reboot(host: string): Promise<void>;
  close(): Promise<void>;
}
