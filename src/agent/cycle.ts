/**
 * One agent cycle: preflight → (wait for a busy installer) → scan → download → install → rescan
 * and install what became applicable, until nothing is left, a reboot is needed, or only failed
 * and looping updates remain. The same code runs against the real provider and the lab's.
 *
 * Every step is an AgentEvent in the cycle's EventLog; the cycle always ends with exactly one
 * `cycle-finished`, whatever happened (provider crash, abort, bug). The decisions themselves
 * (selection, exclusive batches, outcome, reboot) are pure functions in cycle-decisions.ts.
 */
import type { CycleOutcome, CycleRequest } from '../domain/agent-log.ts';
import { PatchlineError } from '../domain/errors.ts';
import type { UpdateRecord } from '../domain/update.ts';
import { WuaClient, type ProviderChannel, type RequestOptions } from '../wua/client.ts';
import { formatHResultForUser } from '../wua/hresult.ts';
import type { PerUpdateResult, ProgressEvent, ResultOf, WarningEvent } from '../wua/protocol.ts';
import type { Clock } from './clock.ts';
import {
  HRESULT_INSTALLER_BUSY,
  SEARCH_CRITERIA,
  busyPollDelayMs,
  decideOutcome,
  decideWillReboot,
  nextInstallBatch,
  selectForPass,
} from './cycle-decisions.ts';
import { EventLog, type EventSink } from './event-log.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export interface CycleTimeouts {
  /** PowerShell's cold start on a loaded server can take tens of seconds. */
  readonly helloMs: number;
  readonly rebootStatusMs: number;
  /** Online scans of an old Server 2016 against Microsoft Update take 30+ minutes. */
  readonly searchMs: number;
  readonly downloadMs: number;
  /** Server 2016 cumulative updates can install for well over an hour. */
  readonly installMs: number;
  /** How long an aborted request may take to report `aborted` (RequestAbort is asynchronous). */
  readonly abortGraceMs: number;
}

export const DEFAULT_CYCLE_TIMEOUTS: CycleTimeouts = Object.freeze({
  helloMs: 2 * MINUTE_MS,
  rebootStatusMs: 2 * MINUTE_MS,
  searchMs: 90 * MINUTE_MS,
  downloadMs: 4 * HOUR_MS,
  installMs: 4 * HOUR_MS,
  abortGraceMs: 2 * MINUTE_MS,
});

/**
 * Scan/install passes per cycle. Each pass needs a new update to become applicable without a
 * reboot (servicing stack → cumulative update); more than this means something keeps coming back.
 */
export const MAX_PASSES_PER_CYCLE = 10;

export interface CycleDeps {
  readonly openProvider: () => ProviderChannel;
  readonly sinks: readonly EventSink[];
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly timeouts?: Partial<CycleTimeouts>;
  readonly agentVersion?: string;
  /** Reported in cycle-started; the agent's own pid by default. */
  readonly pid?: number;
  readonly random?: () => number;
  /** Told when a sink throws (the cycle goes on). */
  readonly onSinkError?: (error: unknown) => void;
}

export interface CycleSummary {
  readonly outcome: CycleOutcome;
  readonly rebootRequired: boolean;
  readonly willReboot: boolean;
  readonly message: string | null;
  readonly hresult: string | null;
  readonly installed: readonly string[];
  readonly failed: readonly string[];
  readonly loops: readonly string[];
  /** The cycle's log: every event, cycle-finished last. The caller may add `rebooting`. */
  readonly log: EventLog;
  /** Set when the agent itself failed (a bug): the CLI exits 70 after handing the log over. */
  readonly internalError?: unknown;
}

/** Control flow: the cycle ends here with this outcome. */
class CycleEnd {
  constructor(
    readonly outcome: CycleOutcome,
    readonly message: string | null,
    readonly hresult: string | null = null,
  ) {}
}

/**
 * Runs one cycle and returns how it ended; never throws.
 *
 * @example
 *   const summary = await runCycle(request, { openProvider: () => spawnProvider(argv), sinks: [stdoutSink()],
 *     clock: systemClock, signal: controller.signal });
 *   if (summary.willReboot) …
 */
export async function runCycle(request: CycleRequest, deps: CycleDeps): Promise<CycleSummary> {
  return new CycleRun(request, deps).run();
}

class CycleRun {
  private readonly log: EventLog;
  private readonly timeouts: CycleTimeouts;
  private client: WuaClient | null = null;
  private readonly installed = new Set<string>();
  private readonly failed = new Set<string>();
  private readonly loops = new Set<string>();
  private rebootRequired = false;
  /** When the installer was first found busy in this cycle: the busy budget is per cycle. */
  private busySince: number | null = null;
  private lastProgress = '';

  constructor(
    private readonly request: CycleRequest,
    private readonly deps: CycleDeps,
  ) {
    this.log = new EventLog(deps.sinks, () => deps.clock.now(), deps.onSinkError);
    this.timeouts = { ...DEFAULT_CYCLE_TIMEOUTS, ...deps.timeouts };
  }

  async run(): Promise<CycleSummary> {
    let end: CycleEnd;
    let internalError: unknown;
    try {
      end = await this.work();
    } catch (error) {
      if (error instanceof CycleEnd) end = error;
      else if (this.deps.signal.aborted) end = new CycleEnd('aborted', abortMessage(error));
      else if (error instanceof PatchlineError) end = new CycleEnd('error', `${error.code}: ${error.message}`);
      else {
        internalError = error;
        end = new CycleEnd(
          'error',
          `internal error in the agent: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    } finally {
      await this.client?.close();
    }
    if (this.log.lastSeq() === 0) this.emitStarted('unavailable');
    const willReboot = decideWillReboot(
      this.request.mode,
      this.request.reboot,
      end.outcome,
      this.rebootRequired,
      this.installed.size,
    );
    this.log.emit({
      kind: 'cycle-finished',
      outcome: end.outcome,
      rebootRequired: this.rebootRequired,
      willReboot,
      message: end.message,
      hresult: end.hresult,
    });
    return {
      outcome: end.outcome,
      rebootRequired: this.rebootRequired,
      willReboot,
      message: end.message,
      hresult: end.hresult,
      installed: [...this.installed],
      failed: [...this.failed],
      loops: [...this.loops],
      log: this.log,
      ...(internalError === undefined ? {} : { internalError }),
    };
  }

  private async work(): Promise<CycleEnd> {
    const client = await WuaClient.start(this.deps.openProvider(), {
      helloTimeoutMs: this.timeouts.helloMs,
      abortGraceMs: this.timeouts.abortGraceMs,
      onWarning: (w) => this.onWarning(w),
    });
    this.client = client;
    this.emitStarted(`${client.hello.provider} ${client.hello.version}`);

    const status = await this.rebootStatus();
    this.log.emit({
      kind: 'preflight',
      rebootRequired: status.rebootRequired,
      installerBusy: status.installerBusy,
      lastBootUpTime: status.lastBootUpTime,
    });
    if (status.rebootRequired) {
      this.rebootRequired = true;
      if (this.request.mode !== 'scan') {
        return new CycleEnd(
          'reboot-pending',
          'a reboot was already pending: nothing was installed; reboot first, then patch',
        );
      }
      this.log.emit({
        kind: 'warning',
        message: 'a reboot is pending: scanning anyway; the results may change after the reboot',
        hresult: null,
      });
    }
    if (status.installerBusy && this.request.mode === 'install') await this.waitForInstaller();

    if (this.request.mode === 'scan') {
      const pass = await this.scan(1);
      return new CycleEnd('done', `scan only: ${pass.length} update(s) would be installed`);
    }
    if (this.request.mode === 'download') {
      const selected = await this.scan(1);
      await this.download(selected);
      const outcome = this.failed.size > 0 ? 'failed' : 'done';
      return new CycleEnd(
        outcome,
        `download only: ${selected.length - this.failed.size} of ${selected.length} update(s) downloaded`,
      );
    }
    return this.installPasses();
  }

  /** Install mode: pass after pass, rescanning after every pass that needed no reboot. */
  private async installPasses(): Promise<CycleEnd> {
    for (let pass = 1; pass <= MAX_PASSES_PER_CYCLE; pass++) {
      const selected = await this.scan(pass);
      if (selected.length === 0) return this.finishInstall();
      const batch = await this.download(nextInstallBatch(selected));
      if (batch.length === 0) continue; // every download failed: rescan, the failures stay out
      await this.install(batch);
      if (this.rebootRequired) return this.finishInstall();
    }
    this.log.emit({
      kind: 'warning',
      message: `stopped after ${MAX_PASSES_PER_CYCLE} scan/install passes in one cycle: updates keep becoming applicable`,
      hresult: null,
    });
    return this.finishInstall();
  }

  private async finishInstall(): Promise<CycleEnd> {
    // Some updates only tell ISystemInformation, not their own result, that they need a reboot.
    if (!this.rebootRequired && this.installed.size > 0)
      this.rebootRequired = (await this.rebootStatus()).rebootRequired;
    const outcome = decideOutcome({
      aborted: false,
      rebootRequired: this.rebootRequired,
      failed: this.failed.size,
      loops: this.loops.size,
    });
    const parts = [`installed ${this.installed.size} update(s)`];
    if (this.failed.size > 0) parts.push(`${this.failed.size} failed`);
    if (this.loops.size > 0) parts.push(`${this.loops.size} came back after being installed (loop)`);
    if (outcome === 'reboot-required') parts.push('a reboot is required to go on');
    if (outcome === 'done') parts.push('nothing matching the filters is left');
    return new CycleEnd(outcome, parts.join('; '));
  }

  /** Searches, selects, emits scan-result (and loop-detected); returns the updates to act on. */
  private async scan(pass: number): Promise<readonly UpdateRecord[]> {
    const result = await this.call(
      {
        type: 'search',
        criteria: SEARCH_CRITERIA,
        serverSelection: this.request.serverSelection,
        ...(this.request.offlineCabPath === undefined ? {} : { offlineCabPath: this.request.offlineCabPath }),
      },
      this.timeouts.searchMs,
    );
    this.throwIfAborted('search', result);
    if ((result.resultCode !== 'succeeded' && result.resultCode !== 'succeededWithErrors') || !result.data) {
      throw new CycleEnd(
        'error',
        `the Windows Update search failed (${result.resultCode})${explain(result)}`,
        result.hresult,
      );
    }
    const found = result.data.updates;
    const selection = selectForPass(
      found,
      this.request,
      { installedThisCycle: this.installed, failedThisCycle: this.failed },
      this.deps.clock.now(),
    );
    this.log.emit({
      kind: 'scan-result',
      pass,
      found,
      selected: selection.selected.map((u) => u.updateId),
      skipped: selection.skipped,
    });
    const newLoops = selection.loops.filter((id) => !this.loops.has(id));
    if (newLoops.length > 0) {
      for (const id of newLoops) this.loops.add(id);
      this.log.emit({ kind: 'loop-detected', updateIds: newLoops });
    }
    return selection.selected;
  }

  /** Downloads what is not downloaded yet; returns the updates that are now ready to install. */
  private async download(updates: readonly UpdateRecord[]): Promise<readonly UpdateRecord[]> {
    const missing = updates.filter((u) => !u.isDownloaded);
    if (missing.length === 0) return updates;
    const result = await this.call(
      { type: 'download', updateIds: missing.map((u) => u.updateId) },
      this.timeouts.downloadMs,
    );
    const failedNow = new Set<string>();
    for (const r of perUpdate(missing, result)) {
      this.log.emit({
        kind: 'update-result',
        phase: 'download',
        updateId: r.updateId,
        resultCode: r.resultCode,
        hresult: r.hresult,
        rebootRequired: false,
      });
      if (!succeeded(r)) failedNow.add(r.updateId.toLowerCase());
    }
    for (const id of failedNow) this.failed.add(id);
    this.throwIfAborted('download', result);
    return updates.filter((u) => !failedNow.has(u.updateId.toLowerCase()));
  }

  private async install(batch: readonly UpdateRecord[]): Promise<void> {
    let result = await this.call({ type: 'install', updateIds: batch.map((u) => u.updateId) }, this.timeouts.installMs);
    // The installer became busy between preflight and now (another install started): wait, retry.
    while (isInstallerBusy(result)) {
      this.throwIfAborted('install', result);
      await this.waitForInstaller();
      result = await this.call({ type: 'install', updateIds: batch.map((u) => u.updateId) }, this.timeouts.installMs);
    }
    for (const r of perUpdate(batch, result)) {
      const rebootRequired = r.rebootRequired ?? false;
      this.log.emit({
        kind: 'update-result',
        phase: 'install',
        updateId: r.updateId,
        resultCode: r.resultCode,
        hresult: r.hresult,
        rebootRequired,
      });
      if (succeeded(r)) this.installed.add(r.updateId.toLowerCase());
      else this.failed.add(r.updateId.toLowerCase());
      if (rebootRequired) this.rebootRequired = true;
    }
    if (result.data?.rebootRequired) this.rebootRequired = true;
    this.throwIfAborted('install', result);
  }

  /**
   * Polls rebootStatus with capped backoff until the installer is free, within the cycle's busy
   * budget (request.installerBusyTimeoutSeconds, counted from the first time it was busy).
   */
  private async waitForInstaller(): Promise<void> {
    const budgetMs = this.request.installerBusyTimeoutSeconds * 1_000;
    const now = (): number => this.deps.clock.now().getTime();
    this.busySince ??= now();
    const remainingS = Math.max(0, Math.round((budgetMs - (now() - this.busySince)) / 1_000));
    this.log.emit({ kind: 'waiting', reason: 'installer-busy', seconds: remainingS });
    for (let attempt = 0; ; attempt++) {
      const left = budgetMs - (now() - this.busySince);
      if (left <= 0) {
        throw new CycleEnd(
          'failed',
          `the Windows installer stayed busy for ${this.request.installerBusyTimeoutSeconds} s (another installation is running): ` +
            'let it finish or raise the installer-busy timeout',
          HRESULT_INSTALLER_BUSY,
        );
      }
      await this.deps.clock.sleep(Math.min(left, busyPollDelayMs(attempt, this.deps.random)), this.deps.signal);
      const status = await this.rebootStatus();
      if (status.rebootRequired) {
        this.rebootRequired = true;
        // The other installation finished and wants a reboot: nothing more can be installed now.
        throw new CycleEnd(
          this.installed.size > 0 ? 'reboot-required' : 'reboot-pending',
          'another installation finished while waiting and requires a reboot before more can be installed',
        );
      }
      if (!status.installerBusy) return;
    }
  }

  private async rebootStatus(): Promise<NonNullable<ResultOf<'rebootStatus'>['data']>> {
    const result = await this.call({ type: 'rebootStatus' }, this.timeouts.rebootStatusMs);
    this.throwIfAborted('rebootStatus', result);
    if (result.resultCode !== 'succeeded' || !result.data) {
      throw new CycleEnd(
        'error',
        `the provider could not read the reboot status (${result.resultCode})${explain(result)}`,
        result.hresult,
      );
    }
    return result.data;
  }

  /** One provider request with this cycle's abort signal and event routing; ends the cycle on abort. */
  private async call<B extends Parameters<WuaClient['request']>[0]>(
    body: B,
    timeoutMs: number,
  ): Promise<ResultOf<B['type']>> {
    const client = this.client;
    if (!client) throw new Error('provider not started');
    if (this.deps.signal.aborted) throw new CycleEnd('aborted', 'aborted before the next step started');
    const options: RequestOptions = {
      timeoutMs,
      signal: this.deps.signal,
      onProgress: (p) => this.onProgress(p),
      onWarning: (w) => this.onWarning(w),
    };
    return client.request(body, options);
  }

  /** After a step's results are in the log: stop here if the cycle was aborted meanwhile. */
  private throwIfAborted(step: string, result: { readonly resultCode: string; readonly hresult: string | null }): void {
    if (this.deps.signal.aborted) {
      throw new CycleEnd(
        'aborted',
        `aborted during ${step}: the provider reported ${result.resultCode}`,
        result.hresult,
      );
    }
  }

  private onProgress(p: ProgressEvent): void {
    // Providers may report many times per percent; the log keeps one event per whole percent.
    const key = `${p.phase}|${p.updateId ?? ''}|${Math.floor(p.percent)}`;
    if (key === this.lastProgress) return;
    this.lastProgress = key;
    this.log.emit({
      kind: 'progress',
      phase: p.phase,
      updateId: p.updateId ?? null,
      percent: p.percent,
      ...(p.bytes === undefined ? {} : { bytes: p.bytes }),
      ...(p.totalBytes === undefined ? {} : { totalBytes: p.totalBytes }),
    });
  }

  private onWarning(w: WarningEvent): void {
    this.log.emit({ kind: 'warning', message: w.message, hresult: w.hresult ?? null });
  }

  private emitStarted(provider: string): void {
    this.log.emit({
      kind: 'cycle-started',
      runId: this.request.runId,
      host: this.request.host,
      cycle: this.request.cycle,
      pid: this.deps.pid ?? process.pid,
      provider,
      agentVersion: this.deps.agentVersion ?? 'unknown',
    });
  }
}

function succeeded(r: Pick<PerUpdateResult, 'resultCode'>): boolean {
  return r.resultCode === 'succeeded' || r.resultCode === 'succeededWithErrors';
}

/** One result per requested update, whether or not the provider reported each (a call that failed as a whole reports none). */
function perUpdate(
  requested: readonly UpdateRecord[],
  result: ResultOf<'download'> | ResultOf<'install'>,
): PerUpdateResult[] {
  const reported = new Map((result.data?.updates ?? []).map((r) => [r.updateId.toLowerCase(), r]));
  return requested.map(
    (u) =>
      reported.get(u.updateId.toLowerCase()) ?? {
        updateId: u.updateId,
        // The whole call failed (or skipped this update): the update shares the call's verdict.
        resultCode:
          result.resultCode === 'succeeded' || result.resultCode === 'succeededWithErrors'
            ? 'notStarted'
            : result.resultCode,
        hresult: result.hresult,
      },
  );
}

function isInstallerBusy(result: ResultOf<'install'>): boolean {
  if (result.hresult === HRESULT_INSTALLER_BUSY && result.resultCode === 'failed') return true;
  const updates = result.data?.updates ?? [];
  return updates.length > 0 && updates.every((u) => u.hresult === HRESULT_INSTALLER_BUSY);
}

/** The provider's message and what its HRESULT means and suggests, for a cycle-finished message. */
function explain(result: { readonly hresult: string | null; readonly message?: string }): string {
  const parts = [result.message, result.hresult === null ? undefined : formatHResultForUser(result.hresult)].filter(
    (p) => p,
  );
  return parts.length > 0 ? `: ${parts.join(' — ')}` : '';
}

function abortMessage(error: unknown): string {
  const detail =
    error instanceof PatchlineError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
  return `aborted (${detail})`;
}
