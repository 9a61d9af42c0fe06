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
import { EXIT, PatchlineError } from '../domain/errors.ts';

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

/**
 * What went wrong when a transport could not do what the engine asked. The engine decides by kind:
 * - `unreachable`: the host does not answer (connection refused, timeout, rebooting) → wait for it;
 *   still away after --reboot-timeout → the host ends unreachable (exit 3).
 * - `auth`: the target refused our credentials → the host ends access-denied at once (exit 3).
 * - `host-key`: the target's identity could not be verified (unknown or changed key) → the host
 *   ends unreachable at once with what to fix (exit 3); never retried, never waited out.
 * - `refused`: the target's task scheduler refused to start the agent (an HRESULT of its own) →
 *   the host ends at once (access-denied for E_ACCESSDENIED, otherwise unreachable; exit 3).
 * - `internal`: a fault on our side (a bug, a protocol violation) → the run stops, exit 70, the
 *   cause kept. Anything a transport throws that is not classified is treated as internal.
 */
export const TRANSPORT_FAILURE_KINDS = ['unreachable', 'auth', 'host-key', 'refused', 'internal'] as const;
export type TransportFailureKind = (typeof TRANSPORT_FAILURE_KINDS)[number];

/** The error codes (docs/errors.md) a TransportError carries unless the transport names its own. */
const DEFAULT_CODES: Record<TransportFailureKind, string> = {
  unreachable: 'HOST_UNREACHABLE',
  auth: 'TRANSPORT_AUTH_FAILED',
  'host-key': 'TRANSPORT_HOST_KEY_REFUSED',
  refused: 'LAUNCH_REFUSED',
  internal: 'TRANSPORT_INTERNAL',
};

/**
 * A classified transport failure. Transports throw it (or a subclass); `cause` keeps the original.
 *
 * @example throw new TransportError('auth', 'web01', 'web01 refused user patch (publickey): check the key file', { cause })
 */
export class TransportError extends PatchlineError {
  constructor(
    readonly kind: TransportFailureKind,
    readonly host: string,
    message: string,
    details: { readonly cause?: unknown; readonly code?: string } = {},
  ) {
    super(details.code ?? DEFAULT_CODES[kind], message, {
      exitCode: kind === 'internal' ? EXIT.INTERNAL : EXIT.UNREACHABLE,
      ...(details.cause !== undefined ? { cause: details.cause } : {}),
      context: { host },
    });
  }
}

/** The target's task scheduler refused to start the agent; carries the scheduler's own error. */
export class LaunchRefusedError extends TransportError {
  constructor(
    host: string,
    readonly hresult: string,
    message: string,
    details: { readonly cause?: unknown } = {},
  ) {
    super('refused', host, message, details);
  }
}

/**
 * The kind of any error a transport threw. Unclassified errors are `internal` — a bug in a new
 * transport must not pass for a host that is down. Errors of the older convention (a
 * PatchlineError with exit 3) are `unreachable`; a timeout of the engine's own bound is too.
 *
 * @example transportFailureOf(new TypeError('x is undefined')) // 'internal'
 */
export function transportFailureOf(error: unknown): TransportFailureKind {
  if (error instanceof TransportError) return error.kind;
  if (error instanceof PatchlineError) {
    if (error.exitCode === EXIT.UNREACHABLE) return 'unreachable';
    // A bad input for this target (an offline cab that cannot be placed): the host cannot be
    // patched until the operator fixes it, like a refused launch.
    if (error.exitCode === EXIT.USAGE) return 'refused';
    return 'internal';
  }
  if (error instanceof Error && error.name === 'TimeoutError') return 'unreachable';
  return 'internal';
}

/**
 * Every method throws a TransportError (or its subclass LaunchRefusedError) when it fails for a
 * reason of the target's: see TRANSPORT_FAILURE_KINDS. `contract.case.ts` is the shared suite every
 * transport passes.
 */
export interface Transport {
  readonly name: string;
  /** Checks that every target is known/reachable by name; throws a usage error naming the unknown ones. */
  resolveTargets(names: readonly string[]): Promise<readonly string[]>;
  /** Every target this transport knows (the lab: every host of the scenario). */
  listTargets(): Promise<readonly string[]>;
  /** Makes the client and any input (offline cab) available on the target. Idempotent. */
  prepare(
    host: string,
    input: { readonly offlineCabSource?: string },
    signal: AbortSignal,
  ): Promise<{ readonly offlineCabPath?: string }>;
  /** Starts the agent for one cycle through the target's task scheduler, as SYSTEM, now. */
  launch(host: string, request: CycleRequest, signal: AbortSignal): Promise<LaunchResult>;
  /** Is the host up, and which boot is it in? Returns reachable: false for a host that does not answer; throws only for auth, host-key or internal failures. */
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
