/**
 * How a virtual host's task scheduler actually starts the agent: as separate processes (the real
 * path, what the tests exercise) or in the daemon's own process (large fleets). Both run the same
 * agent and provider code; the task scheduler above them does not know which it has.
 */
import type { CycleRequest } from '../domain/agent-log.ts';

/** Everything a launcher needs to know about the host it starts an agent on. */
export interface LaunchHost {
  readonly name: string;
  /** `DIR/hosts/<name>`: state.json, boot.json, tasks/, logs/. */
  readonly hostDir: string;
  /** The daemon's per-host control URL the agent POSTs `/reboot` to (docs/internals.md §6). */
  readonly controlUrl: string;
  readonly controlToken: string;
}

export interface LaunchSpec {
  readonly taskId: string;
  readonly host: LaunchHost;
  /** The request with pipePath set, as written to `requestPath`. */
  readonly request: CycleRequest;
  readonly requestPath: string;
}

/** One started agent. */
export interface LaunchedAgent {
  readonly pid: number;
  /** Settles when the agent (and, for processes, its process) has ended, however it ended. */
  readonly ended: Promise<void>;
  /** Asks the agent to stop: it aborts the running WUA operation and reports `aborted`. */
  stop(): void;
  /** Kills everything this agent started at once (the host is rebooting); resolves once all of it is gone. */
  kill(): Promise<void>;
}

/** Thrown by a launcher that could not start the agent; carries a scheduler-style HRESULT. */
export class LaunchFailedError extends Error {
  override readonly name = 'LaunchFailedError';
  constructor(
    readonly hresult: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Launcher {
  readonly mode: 'process' | 'inprocess';
  /** Starts the agent now; resolves once it runs (PID known), rejects with LaunchFailedError. */
  start(spec: LaunchSpec): Promise<LaunchedAgent>;
  /**
   * Waits (at most `timeoutMs`) until every agent started so far has really finished. A killed
   * process is gone when `ended` settles; an in-process agent's code may still be unwinding then
   * (writing state.json, ending its log hand-over), and a lab being closed must outlast it.
   */
  drain?(timeoutMs: number): Promise<void>;
}
