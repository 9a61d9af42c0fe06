/**
 * What the service does on the host, through the same WUA provider protocol as `patchline agent
 * cycle`: an inventory scan (needed and installed, offline against the server's cab or online),
 * and download/install through the existing cycle executor (src/agent/cycle.ts), limited to the
 * update ids the policy (or an operator's action) allows. Reboots are decided by the service, so
 * the cycle runs with reboot policy `never`.
 */
import type { CycleRequest } from '../../domain/agent-log.ts';
import type { LastAttempt } from '../../domain/agent-protocol.ts';
import type { UpdateRecord } from '../../domain/update.ts';
import { WuaClient, type ProviderChannel } from '../../wua/client.ts';
import type { Clock } from '../clock.ts';
import { DEFAULT_CYCLE_TIMEOUTS, runCycle, type CycleSummary } from '../cycle.ts';

/** WUA criteria for the inventory: what is needed (not hidden) and what is installed. */
export const NEEDED_CRITERIA = 'IsInstalled=0 and IsHidden=0';
export const INSTALLED_CRITERIA = 'IsInstalled=1';
/** A busy installer (another install running) is waited for this long before the attempt fails. */
const INSTALLER_BUSY_TIMEOUT_SECONDS = 30 * 60;

export interface ScanSource {
  readonly kind: 'offline' | 'online';
  /** The verified cab, for offline scans. */
  readonly cabPath?: string;
}

export interface ScanResult {
  readonly needed: readonly UpdateRecord[];
  readonly installed: readonly UpdateRecord[];
  readonly rebootPending: boolean;
}

export interface WorkDeps {
  readonly openProvider: () => ProviderChannel;
  readonly clock: Clock;
  readonly hostName: string;
}

/** One provider session: rebootStatus, then both searches. Throws when the provider fails. */
export async function scanInventory(source: ScanSource, deps: WorkDeps, signal: AbortSignal): Promise<ScanResult> {
  const client = await WuaClient.start(deps.openProvider(), {
    helloTimeoutMs: DEFAULT_CYCLE_TIMEOUTS.helloMs,
    abortGraceMs: DEFAULT_CYCLE_TIMEOUTS.abortGraceMs,
  });
  try {
    const status = await client.request(
      { type: 'rebootStatus' },
      { timeoutMs: DEFAULT_CYCLE_TIMEOUTS.rebootStatusMs, signal },
    );
    const search = async (criteria: string): Promise<readonly UpdateRecord[]> => {
      const result = await client.request(
        {
          type: 'search',
          criteria,
          serverSelection: source.kind === 'offline' ? 'offline' : 'default',
          ...(source.kind === 'offline' && source.cabPath ? { offlineCabPath: source.cabPath } : {}),
        },
        { timeoutMs: DEFAULT_CYCLE_TIMEOUTS.searchMs, signal },
      );
      if ((result.resultCode !== 'succeeded' && result.resultCode !== 'succeededWithErrors') || !result.data) {
        throw new ScanFailedError(
          `the Windows Update search (${criteria}) failed: ${result.resultCode} ${result.hresult ?? ''} ${result.message ?? ''}`.trim(),
          result.hresult,
        );
      }
      return result.data.updates;
    };
    const needed = await search(NEEDED_CRITERIA);
    const installed = await search(INSTALLED_CRITERIA);
    return { needed, installed, rebootPending: status.data?.rebootRequired ?? false };
  } finally {
    await client.close();
  }
}

export class ScanFailedError extends Error {
  override readonly name = 'ScanFailedError';
  constructor(
    message: string,
    readonly hresult: string | null,
  ) {
    super(message);
  }
}

export interface CycleWork {
  readonly id: string;
  readonly mode: 'download' | 'install';
  /** Only these update ids (policy ∩ action); never empty (the caller skips the work instead). */
  readonly updateIds: readonly string[];
  readonly source: ScanSource;
  readonly onProgress?: (phase: 'search' | 'download' | 'install', updateId: string | null, percent: number) => void;
}

/**
 * Runs one download or install cycle and folds its per-update results into `attempts` (returned
 * anew). The cycle's own outcome never throws.
 */
export async function runWorkCycle(
  work: CycleWork,
  attempts: Readonly<Record<string, LastAttempt>>,
  deps: WorkDeps,
  signal: AbortSignal,
): Promise<{ summary: CycleSummary; attempts: Record<string, LastAttempt> }> {
  if (work.updateIds.length === 0)
    throw new Error('runWorkCycle needs at least one update id: an empty list would mean "any update"');
  const request: CycleRequest = {
    runId: work.id,
    host: deps.hostName,
    cycle: 1,
    mode: work.mode,
    reboot: 'never',
    filters: { updateIds: work.updateIds.map((id) => id.toLowerCase()), includeOptional: true, includeDrivers: true },
    exclude: [],
    installedEarlier: [],
    serverSelection: work.source.kind === 'offline' ? 'offline' : 'default',
    ...(work.source.kind === 'offline' && work.source.cabPath ? { offlineCabPath: work.source.cabPath } : {}),
    installerBusyTimeoutSeconds: INSTALLER_BUSY_TIMEOUT_SECONDS,
    logHandoverTimeoutSeconds: 0,
  };
  const next: Record<string, LastAttempt> = { ...attempts };
  const summary = await runCycle(request, {
    openProvider: deps.openProvider,
    clock: deps.clock,
    signal,
    sinks: [
      {
        write: (event) => {
          if (event.kind === 'progress') work.onProgress?.(event.phase, event.updateId, event.percent);
          if (event.kind === 'update-result') {
            const id = event.updateId.toLowerCase();
            const previous = next[id];
            next[id] = {
              phase: event.phase,
              resultCode: event.resultCode,
              hresult: event.hresult,
              at: event.at,
              attempts: (previous?.phase === event.phase ? previous.attempts : 0) + 1,
            };
          }
        },
      },
    ],
  });
  return { summary, attempts: next };
}
