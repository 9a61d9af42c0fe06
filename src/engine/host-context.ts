/**
 * What one host's driver is handed by its run (run.ts): the run's id and options, the transport,
 * the store, the clock and timings, the callback server, the slot pool, the run's stop, and the
 * live log. One value per host, built once: the pieces of a HostDriver (event loop, agent inbox,
 * command runner) take it instead of reaching for globals.
 */
import type { CycleRequest } from '../domain/agent-log.ts';
import type { HostState } from '../domain/cycle.ts';
import type { DescribeHResult } from '../domain/report.ts';
import type { RunsRepo } from '../store/runs-repo.ts';
import type { Transport } from '../transports/transport.ts';
import type { CallbackServer } from './callback-server.ts';
import type { Clock } from './clock.ts';
import type { Slots } from './slots.ts';
import type { EngineTiming, RunLogEvent, RunOptions } from './types.ts';

/** Why the run is stopping, once it is. */
export interface RunStop {
  readonly signal: AbortSignal;
  reason(): 'cancel' | 'deadline' | null;
}

/** A RunLogEvent without the fields the run fills in (time, run id, host). */
export type LogBody = RunLogEvent extends infer E
  ? E extends RunLogEvent
    ? Omit<E, 'at' | 'runId' | 'host'>
    : never
  : never;

export interface HostContext {
  readonly runId: string;
  readonly options: RunOptions;
  readonly transport: Transport;
  readonly repo: RunsRepo;
  readonly clock: Clock;
  readonly timing: EngineTiming;
  /** Where the cycle's agent posts its events (the run's CallbackServer; tests may pass their own). */
  readonly server: Pick<CallbackServer, 'register'>;
  readonly slots: Slots;
  readonly stop: RunStop;
  readonly describe: DescribeHResult;
  readonly log: (host: string, body: LogBody) => void;
}

/** The CycleRequest for a cycle; the same values rebuild it on resume to read the agent's log. */
export function buildCycleRequest(
  runId: string,
  options: RunOptions,
  state: HostState,
  cycle: number,
  parts: {
    exclude: readonly string[];
    installedEarlier: readonly string[];
    offlineCabPath?: string;
    callback?: { url: string; token: string };
  },
): CycleRequest {
  return {
    runId,
    host: state.host,
    cycle,
    mode: options.mode,
    reboot: options.reboot,
    filters: options.filters,
    exclude: parts.exclude,
    installedEarlier: parts.installedEarlier,
    serverSelection: options.serverSelection,
    ...(parts.offlineCabPath !== undefined ? { offlineCabPath: parts.offlineCabPath } : {}),
    installerBusyTimeoutSeconds: options.installerBusyTimeoutSeconds,
    ...(parts.callback ? { callback: parts.callback } : {}),
    logHandoverTimeoutSeconds: options.logHandoverTimeoutSeconds,
  };
}
