/**
 * Durable runs: `startRun` patches the targets to completion, `resumeRun` finishes a run that was
 * cancelled or whose connector died. Both own one callback server, one deadline timer, a slot pool
 * (--parallel / --serial) and one HostDriver per host; everything is released before they return.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { HostEvent, HostOutcome, HostState, CyclePolicy } from '../domain/cycle.ts';
import { initialHostState, isResumable } from '../domain/cycle.ts';
import { EXIT, PatchlineError, usageError } from '../domain/errors.ts';
import { buildReport, exitCodeFor, runOutcomeFor } from '../domain/report.ts';
import { MODES, REBOOT_POLICIES } from '../domain/agent-log.ts';
import { RunsRepo } from '../store/runs-repo.ts';
import { CallbackServer } from './callback-server.ts';
import { sleepUnlessAborted } from './clock.ts';
import { HostDriver, type RunStop } from './host-driver.ts';
import { describeForReport } from './hresult.ts';
import { Slots } from './slots.ts';
import {
  DEFAULT_TIMING,
  type EngineDeps,
  type EngineTiming,
  type RunLogEvent,
  type RunOptions,
  type RunResult,
} from './types.ts';

/** Options as stored with the run (the deadline as ISO text). */
interface StoredOptions extends Omit<RunOptions, 'deadlineAt'> {
  readonly deadlineAt: string | null;
}

/**
 * Starts a run and drives it to its end.
 *
 * @example
 *   const { runId, report, exitCode } = await startRun({ store, transport, clock: systemClock, log: print },
 *     { targets: ['web01'], mode: 'install', reboot: 'if-required', filters: {}, maxCycles: 5, retries: 1,
 *       rebootTimeoutMs: 20 * 60_000, deadlineAt: null, parallel: 10, serverSelection: 'default',
 *       installerBusyTimeoutSeconds: 600, logHandoverTimeoutSeconds: 300 }, signal);
 */
export async function startRun(deps: EngineDeps, options: RunOptions, signal: AbortSignal): Promise<RunResult> {
  validateOptions(options);
  const timing = { ...DEFAULT_TIMING, ...deps.timing };
  const targets = await deps.transport.resolveTargets(options.targets);
  const unique = [...new Set(targets)];
  const now = deps.clock.now();
  const runId = options.runId ?? newRunId(now);
  const repo = new RunsRepo(deps.store.db);
  if (await repo.getRun(runId))
    throw usageError(
      'RUN_EXISTS',
      `A run ${runId} already exists in this state file. Resume it with --resume ${runId}, or start a new run without naming its id.`,
      { context: { run: runId } },
    );
  const policy = policyOf(options, timing);
  const states = unique.map((h) => initialHostState(h, policy));
  const stored: StoredOptions = {
    ...options,
    runId,
    targets: unique,
    deadlineAt: options.deadlineAt ? options.deadlineAt.toISOString() : null,
  };
  await repo.createRun(
    { id: runId, optionsJson: JSON.stringify(stored), startedAt: now.toISOString() },
    states.map((s) => ({
      host: s.host,
      phase: s.phase,
      cycle: s.cycle,
      reboots: s.reboots,
      message: s.message,
      stateJson: JSON.stringify(s),
      updates: [],
    })),
    [{ host: null, at: now.toISOString(), kind: 'run-started', cycle: null, seq: null, data: { options: stored } }],
  );
  return drive(
    deps,
    timing,
    repo,
    runId,
    { ...options, targets: unique },
    now.toISOString(),
    states.map((s) => ({ state: s, first: null })),
    signal,
    false,
  );
}

export interface ResumeOverrides {
  /** A new deadline for the resumed run (null: none). Absent: the saved one if still ahead, else none. */
  readonly deadlineAt?: Date | null;
}

/**
 * The deadline of a resumed run: the one given, else the saved one while it is still ahead. A
 * saved deadline that has passed does not apply again — exit 4 says "resume", and a resume that
 * timed out at once would be useless; give --deadline again to bound the resumed run.
 */
export function resumeDeadline(saved: string | null, overrides: ResumeOverrides, now: Date): Date | null {
  if (overrides.deadlineAt !== undefined) return overrides.deadlineAt;
  if (saved === null) return null;
  const at = new Date(saved);
  return at.getTime() > now.getTime() ? at : null;
}

/**
 * Continues a run: hosts that were cancelled, timed out, unreachable or unfinished go on from their saved state; hosts
 * whose agent was running are re-attached (their log is read, since the old callback is gone).
 * A run with nothing left to do returns its report unchanged.
 */
export async function resumeRun(
  deps: EngineDeps,
  runId: string,
  signal: AbortSignal,
  overrides: ResumeOverrides = {},
): Promise<RunResult> {
  const timing = { ...DEFAULT_TIMING, ...deps.timing };
  const repo = new RunsRepo(deps.store.db);
  const run = await repo.getRun(runId);
  if (!run)
    throw usageError(
      'RUN_NOT_FOUND',
      `No run ${runId} in this state file. List runs with \`patchline runs\`, or pass the --state file the run was started with.`,
      { context: { run: runId } },
    );
  const stored = JSON.parse(run.optionsJson) as StoredOptions;
  const options: RunOptions = { ...stored, deadlineAt: resumeDeadline(stored.deadlineAt, overrides, deps.clock.now()) };
  const hosts = (await repo.getHosts(runId)).map((h) => JSON.parse(h.stateJson) as HostState);
  const resumable = isResumable;
  if (!hosts.some(resumable) && run.finishedAt && run.exitCode !== null) {
    const report = buildReport({
      runId,
      mode: options.mode,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      hosts,
      describe: describeForReport,
    });
    return { runId, report, exitCode: report.run.exitCode ?? EXIT.INTERNAL };
  }
  await repo.setOptions(
    runId,
    JSON.stringify({ ...stored, deadlineAt: options.deadlineAt?.toISOString() ?? null } satisfies StoredOptions),
  );
  await repo.setRunStatus(runId, { outcome: 'running', finishedAt: null, exitCode: null }, [
    { host: null, at: deps.clock.now().toISOString(), kind: 'run-resumed', cycle: null, seq: null, data: {} },
  ]);
  const plan = hosts.map((s) => ({ state: s, first: resumable(s) ? ({ kind: 'resume' } as const) : null }));
  return drive(deps, timing, repo, runId, options, run.startedAt, plan, signal, true);
}

async function drive(
  deps: EngineDeps,
  timing: EngineTiming,
  repo: RunsRepo,
  runId: string,
  options: RunOptions,
  startedAt: string,
  plan: readonly { state: HostState; first: HostEvent | null }[],
  signal: AbortSignal,
  resumed: boolean,
): Promise<RunResult> {
  const log = (host: string | undefined, body: object) => {
    const event = {
      at: deps.clock.now().toISOString(),
      runId,
      ...(host !== undefined ? { host } : {}),
      ...body,
    } as RunLogEvent;
    try {
      deps.log(event);
    } catch (error) {
      // A broken log sink must not stop patching; the store still has every event.
      process.emitWarning(`patchline: run log sink failed: ${(error as Error).message}`);
    }
  };
  log(undefined, {
    kind: 'run-started',
    resumed,
    targets: plan.map((p) => p.state.host),
    mode: options.mode,
    reboot: options.reboot,
    parallel: options.parallel,
    maxCycles: options.maxCycles,
    retries: options.retries,
    rebootTimeoutMs: options.rebootTimeoutMs,
    deadlineAt: options.deadlineAt?.toISOString() ?? null,
  });

  const server = await CallbackServer.start(deps.callbackHost ?? '127.0.0.1');
  const stopCtl = new AbortController();
  const timerCtl = new AbortController();
  // Every host waits on the run's stop signal (a few listeners each): not a leak.
  setMaxListeners(0, stopCtl.signal, signal);
  let reason: 'cancel' | 'deadline' | null = null;
  const drivers: HostDriver[] = [];
  const requestStop = (why: 'cancel' | 'deadline') => {
    if (reason) return;
    reason = why;
    log(undefined, { kind: 'stop-requested', reason: why });
    stopCtl.abort(
      new PatchlineError(
        why === 'cancel' ? 'RUN_CANCELLED' : 'RUN_DEADLINE',
        why === 'cancel' ? 'The run was cancelled.' : 'The run reached its deadline.',
      ),
    );
    for (const d of drivers) d.wake();
  };
  const stop: RunStop = { signal: stopCtl.signal, reason: () => reason };
  const onAbort = () => requestStop('cancel');
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) requestStop('cancel');
  if (options.deadlineAt) {
    const ms = options.deadlineAt.getTime() - deps.clock.now().getTime();
    void sleepUnlessAborted(deps.clock, ms, timerCtl.signal).then((passed) => {
      if (passed) requestStop('deadline');
    });
  }

  const slots = new Slots(Math.max(1, options.parallel));
  const ctx = {
    runId,
    options,
    transport: deps.transport,
    repo,
    clock: deps.clock,
    timing,
    server,
    slots,
    stop,
    describe: describeForReport,
    log: (host: string, body: object) => log(host, body),
  };
  for (const p of plan) drivers.push(new HostDriver(p.state, ctx));
  let finals: HostState[];
  try {
    const settled = await Promise.allSettled(
      drivers.map((d, i) =>
        d.run(plan[i]?.first ?? null).catch((error: unknown) => {
          requestStop('cancel');
          throw error;
        }),
      ),
    );
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure) {
      // One host's driver broke (the store failed?): the others were stopped cleanly so the run stays
      // resumable; give the broken one a chance to save itself as cancelled too.
      await Promise.allSettled(drivers.map((d) => d.run(null)));
      throw new PatchlineError(
        'ENGINE_FAILED',
        `The run ${runId} stopped on an internal error: ${(failure.reason as Error)?.message ?? String(failure.reason)}. Its state is saved: resume the run once the cause is fixed.`,
        { cause: failure.reason, exitCode: EXIT.INTERNAL, context: { run: runId } },
      );
    }
    finals = drivers.map((d) => d.current);
  } finally {
    signal.removeEventListener('abort', onAbort);
    timerCtl.abort();
    stopCtl.abort();
    await server.close();
  }

  const finishedAt = deps.clock.now().toISOString();
  const exitCode = exitCodeFor(
    finals.map((s) => s.phase as HostOutcome),
    options.mode,
  );
  const outcome = runOutcomeFor(exitCode);
  await repo.setRunStatus(runId, { outcome, finishedAt, exitCode }, [
    { host: null, at: finishedAt, kind: 'run-finished', cycle: null, seq: null, data: { outcome, exitCode } },
  ]);
  const report = buildReport({
    runId,
    mode: options.mode,
    startedAt,
    finishedAt,
    hosts: finals,
    describe: describeForReport,
  });
  const counts: Partial<Record<HostOutcome, number>> = {};
  for (const h of report.hosts) counts[h.outcome] = (counts[h.outcome] ?? 0) + 1;
  log(undefined, { kind: 'run-finished', outcome, exitCode, hosts: counts });
  return { runId, report, exitCode };
}

/** The saved report of a run (finished or not), for `patchline report RUN_ID` and the API. */
export async function loadRunReport(deps: Pick<EngineDeps, 'store'>, runId: string): Promise<RunResult | null> {
  const repo = new RunsRepo(deps.store.db);
  const run = await repo.getRun(runId);
  if (!run) return null;
  const stored = JSON.parse(run.optionsJson) as StoredOptions;
  const hosts = (await repo.getHosts(runId)).map((h) => JSON.parse(h.stateJson) as HostState);
  const report = buildReport({
    runId,
    mode: stored.mode,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    hosts,
    describe: describeForReport,
  });
  return { runId, report, exitCode: report.run.exitCode ?? EXIT.INTERNAL };
}

export interface RunSummary {
  readonly id: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** RunOutcome, or 'running' for a run in progress or whose connector died (resume it). */
  readonly outcome: string;
  readonly exitCode: number | null;
  readonly targets: readonly string[];
  readonly mode: RunOptions['mode'];
}

/** The latest runs of a state file, newest first (for `patchline runs`). */
export async function listRuns(deps: Pick<EngineDeps, 'store'>, limit = 50): Promise<readonly RunSummary[]> {
  const runs = await new RunsRepo(deps.store.db).listRuns(limit);
  return runs.map((r) => {
    const o = JSON.parse(r.optionsJson) as StoredOptions;
    return {
      id: r.id,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      outcome: r.outcome,
      exitCode: r.exitCode,
      targets: o.targets,
      mode: o.mode,
    };
  });
}

/**
 * The options a run was started with (deadline as a Date, `meta` as given), or null for an unknown
 * run: lets `--resume RUN_ID` rebuild the transport from `meta` before calling resumeRun.
 */
export async function loadRunOptions(deps: Pick<EngineDeps, 'store'>, runId: string): Promise<RunOptions | null> {
  const run = await new RunsRepo(deps.store.db).getRun(runId);
  if (!run) return null;
  const stored = JSON.parse(run.optionsJson) as StoredOptions;
  return { ...stored, deadlineAt: stored.deadlineAt ? new Date(stored.deadlineAt) : null };
}

function policyOf(options: RunOptions, timing: EngineTiming): CyclePolicy {
  return {
    mode: options.mode,
    reboot: options.reboot,
    maxCycles: options.maxCycles,
    retries: options.retries,
    rebootTimeoutMs: options.rebootTimeoutMs,
    probeInitialDelayMs: timing.probeInitialDelayMs,
    probeMaxDelayMs: timing.probeMaxDelayMs,
    agentRebootGraceMs: timing.agentRebootGraceMs,
  };
}

/** "20261121-0542-3f9a1c": sortable by start time, unique enough for one state file and readable aloud. */
export function newRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 13);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

function validateOptions(o: RunOptions): void {
  const intAtLeast = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min)
      throw usageError('RUN_OPTION_INVALID', `${name} must be a whole number ≥ ${min} (got ${v}).`);
  };
  if (o.runId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.runId))
    throw usageError(
      'RUN_OPTION_INVALID',
      `A run id is 1–64 letters, digits, dots, dashes or underscores (got "${o.runId}").`,
    );
  if (o.targets.length === 0) throw usageError('RUN_NO_TARGETS', 'Name at least one target host.');
  if (!(MODES as readonly string[]).includes(o.mode))
    throw usageError('RUN_OPTION_INVALID', `Unknown mode ${o.mode}: use one of ${MODES.join(', ')}.`);
  if (!(REBOOT_POLICIES as readonly string[]).includes(o.reboot))
    throw usageError('RUN_OPTION_INVALID', `Unknown --reboot ${o.reboot}: use one of ${REBOOT_POLICIES.join(', ')}.`);
  intAtLeast('--max-cycles', o.maxCycles, 1);
  intAtLeast('--retries', o.retries, 0);
  intAtLeast('--parallel', o.parallel, 1);
  if (!(o.rebootTimeoutMs > 0))
    throw usageError('RUN_OPTION_INVALID', `--reboot-timeout must be positive (got ${o.rebootTimeoutMs} ms).`);
}
