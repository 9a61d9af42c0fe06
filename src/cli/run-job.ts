/**
 * Runs a validated `patchline run`: checks everything that can be checked before starting (the
 * scenario, host names, products, the report path), opens the state, builds the lab transport,
 * hands the run to the engine, renders the live log, and writes the report on every way out —
 * success, failures, cancel, deadline, an internal error, a broken stdout pipe.
 *
 * SIGINT/SIGTERM cancel the run cleanly (no new work, running agents aborted, state saved,
 * exit 5); a second signal exits at once (state is still consistent: every transition is
 * persisted before it acts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isResumable, type HostState } from '../domain/cycle.ts';
import { EXIT, PatchlineError, usageError } from '../domain/errors.ts';
import type { UnmatchedFilter } from '../domain/filters.ts';
import {
  labRebootTimeoutMs,
  loadRunOptions,
  loadRunReport,
  newRunId,
  resumeRun,
  startRun,
  systemClock,
  type EngineDeps,
  type RunOptions,
  type RunResult,
} from '../engine/index.ts';
import { loadScenario, type Scenario } from '../lab/scenario.ts';
import { openLabTransport, stopLabDaemon } from '../lab/daemon-main.ts';
import { openStore, type Store } from '../store/db.ts';
import { defaultStateFile } from '../store/paths.ts';
import { RunsRepo } from '../store/runs-repo.ts';
import { DEFAULT_LOG_HANDOVER_TIMEOUT_MS, type ParsedRun, type RunConfig } from './run-options.ts';
import { guardedOutput, jsonLog, textLog, type LiveLog } from './live-log.ts';
import { checkReportTarget, writeReportFile } from './report-file.ts';
import { completeReport } from './run-report.ts';
import { checkCatalogProducts } from './catalog-products.ts';
import { lockRun, type RunLock } from './run-lock.ts';
import { resumeCommand, resumeConflicts, type RunMeta } from './run-resume.ts';
import { openSshRunTransport } from './ssh-run.ts';
import { clientVersion, openWindowsRunTransport } from './windows-run.ts';

/** What the CLI keeps with a run so `--resume` can rebuild its transport. */
export type TransportConfig = NonNullable<RunMeta['transportConfig']>;

/**
 * Lab hosts reboot in seconds (scenario durations × timeScale), so the engine looks at them often:
 * a probe is a local HTTP call, and probing at most every 250 ms keeps the time lost between a
 * host's return and the engine noticing it to ~0.1 s per reboot (bench/run-overhead; with probes
 * backing off to 2 s it was ~1.2 s per reboot, a third of the run's overhead). A lab host's reboot
 * starts the moment the agent asks, so 2 s of "same boot" after a failed agent reboot means it
 * did not happen. Real servers keep the engine's defaults (probes from 5 s up to a minute).
 */
export const LAB_TIMING = {
  probeInitialDelayMs: 100,
  probeMaxDelayMs: 250,
  agentPollMs: 1_000,
  streamSilenceMs: 15_000,
  agentRebootGraceMs: 2_000,
} as const;
/** The SSH lab: every call is an SSH round trip and a forced command, so it probes a little less often. */
export const SSH_LAB_TIMING = {
  ...LAB_TIMING,
  probeInitialDelayMs: 200,
  probeMaxDelayMs: 500,
  agentRebootGraceMs: 5_000,
} as const;

/** Exits after which the run can be continued with --resume (and the command is printed). */
const RESUMABLE_EXITS: readonly number[] = [EXIT.UNREACHABLE, EXIT.DEADLINE, EXIT.CANCELLED, EXIT.INTERNAL];

function labDirFor(stateFile: string, runId: string): string {
  return join(dirname(resolve(stateFile)), 'lab', runId);
}

/**
 * Checks the scenario, the target names and the product names; no names means every host of the
 * scenario. Host names match case-insensitively (as on Windows) and come back as the scenario
 * writes them.
 */
async function checkLabTargets(config: RunConfig): Promise<readonly string[]> {
  // Validate before anything starts: a bad scenario or an unknown host is a usage error (64).
  const scenario = await loadScenario(config.labScenario!);
  const byName = new Map(scenario.hosts.map((h) => [h.name.toLowerCase(), h.name]));
  const unknown = config.targets.filter((t) => !byName.has(t.toLowerCase()));
  if (unknown.length > 0) {
    const some = scenario.hosts
      .slice(0, 5)
      .map((h) => h.name)
      .join(', ');
    throw usageError(
      'UNKNOWN_HOST',
      `${unknown.join(', ')}: not ${unknown.length === 1 ? 'a host' : 'hosts'} of the lab scenario ${config.labScenario} (it has ${scenario.hosts.length}: ${some}${scenario.hosts.length > 5 ? ', …' : ''}).`,
    );
  }
  checkProducts(config, scenario);
  if (config.offlineCab !== null && !/^https?:\/\//i.test(config.offlineCab) && !existsSync(config.offlineCab)) {
    throw usageError(
      'OFFLINE_CAB_NOT_FOUND',
      `--offline-cab ${config.offlineCab}: no such file. Give the path (or http(s) URL) of a wsusscn2.cab; \`patchline lab catalog SCENARIO --out FILE\` makes a lab one.`,
    );
  }
  return config.targets.length > 0
    ? config.targets.map((t) => byName.get(t.toLowerCase())!)
    : scenario.hosts.map((h) => h.name);
}

/** A lab run's --reboot-timeout default shrinks with the scenario's timeScale (engine labRebootTimeoutMs). */
async function withLabDefaults(config: RunConfig): Promise<RunConfig> {
  if (config.labScenario === null || config.rebootTimeoutGiven) return config;
  return { ...config, rebootTimeoutMs: labRebootTimeoutMs((await loadScenario(config.labScenario)).timeScale) };
}

/** The lab scenario knows every product name: a typo would select nothing and end "compliant", so refuse it. */
function checkProducts(config: RunConfig, scenario: Scenario): void {
  const given = config.filters.products;
  if (!given || given.length === 0) return;
  const known = new Map<string, string>();
  for (const u of scenario.catalog) for (const p of u.products) known.set(p.toLowerCase(), p);
  for (const h of scenario.hosts) known.set(h.product.toLowerCase(), h.product);
  const unknown = given.filter((p) => !known.has(p.toLowerCase()));
  if (unknown.length > 0) {
    throw usageError(
      'USAGE_VALUE',
      `--product: ${unknown.map((p) => `"${p}"`).join(', ')} ${unknown.length === 1 ? 'is not a product' : 'are not products'} of the lab scenario ${config.labScenario}. Known: ${[...known.values()].sort().join(', ')}.`,
    );
  }
}

/**
 * An --offline-cab URL is downloaded once by the connector (conditional and resumable, like
 * `catalog sync`), then copied to each target. Its signature is checked on each target by the
 * scan itself, as WUA's AddScanPackageService does.
 */
async function localOfflineCab(source: string, stateFile: string): Promise<string> {
  if (!/^https?:\/\//i.test(source)) return resolve(source);
  const { syncCatalog } = await import('../catalog/sync.ts');
  const { proxyDispatcher } = await import('../catalog/proxy.ts');
  const result = await syncCatalog({
    url: source,
    dir: join(dirname(resolve(stateFile)), 'offline-cab'),
    dispatcher: proxyDispatcher(undefined),
    verify: async () => {},
  });
  return result.file;
}

function toEngineOptions(
  config: RunConfig,
  targets: readonly string[],
  offlineCab: string | null,
  runId: string,
  meta: RunMeta,
  now: Date,
): RunOptions {
  return {
    runId,
    meta: { ...meta },
    targets,
    mode: config.mode,
    reboot: config.reboot,
    filters: config.filters,
    maxCycles: config.maxCycles,
    retries: config.retries,
    rebootTimeoutMs: config.rebootTimeoutMs,
    deadlineAt: config.deadlineMs === null ? null : new Date(now.getTime() + config.deadlineMs),
    parallel: config.parallel,
    serverSelection: offlineCab ? 'offline' : 'default',
    ...(offlineCab ? { offlineCabSource: offlineCab } : {}),
    installerBusyTimeoutSeconds: Math.round(config.installerBusyTimeoutMs / 1000),
    logHandoverTimeoutSeconds: Math.round(DEFAULT_LOG_HANDOVER_TIMEOUT_MS / 1000),
  };
}

function makeLog(parsed: ParsedRun): LiveLog {
  const out = guardedOutput(process.stdout);
  if (parsed.output.logFormat === 'json') return jsonLog(out);
  const tty = Boolean(process.stdout.isTTY) && parsed.output.progress;
  return textLog(out, { tty, color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR });
}

/** The state file given (or PATCHLINE_STATE) is "default" only when it is the built-in path. */
function isDefaultState(stateFile: string): boolean {
  return resolve(stateFile) === resolve(defaultStateFile({ ...process.env, PATCHLINE_STATE: '' }));
}

/** A resumed run: the saved options, checked against what the command line gave. */
async function loadForResume(
  store: Store,
  parsed: ParsedRun & { kind: 'resume' },
  stateFile: string,
): Promise<RunOptions> {
  const options = await loadRunOptions({ store }, parsed.runId);
  if (!options)
    throw usageError(
      'RUN_NOT_FOUND',
      `No run ${parsed.runId} in the state file ${stateFile}. \`patchline runs${isDefaultState(stateFile) ? '' : ` --state ${stateFile}`}\` lists its runs; pass the --state file the run was started with.`,
      { context: { run: parsed.runId, file: stateFile } },
    );
  const meta = (options.meta ?? {}) as RunMeta;
  if (!meta.transportConfig)
    throw usageError(
      'RUN_NOT_RESUMABLE',
      `Run ${parsed.runId} does not record how its targets were reached; it cannot be resumed by this version.`,
    );
  const conflicts = resumeConflicts(parsed.given, parsed.config, options);
  if (conflicts.length > 0) {
    throw usageError(
      'RESUME_CONFLICT',
      `--resume continues run ${parsed.runId} with the options it was started with, and these differ: ${conflicts.map((c) => `${c.option} ${c.given} (the run has ${c.saved})`).join('; ')}. Remove them or give the saved values; only --state, --report, --log-format and --deadline may change.`,
      { context: { run: parsed.runId } },
    );
  }
  return options;
}

/** True when no host of the run has anything left to do: a resume only reports. */
async function isFinished(store: Store, runId: string): Promise<boolean> {
  const repo = new RunsRepo(store.db);
  const run = await repo.getRun(runId);
  if (!run || run.finishedAt === null || run.exitCode === null) return false;
  return !(await repo.getHosts(runId)).some((h) => isResumable(JSON.parse(h.stateJson) as HostState));
}

function warnUnmatched(unmatched: readonly UnmatchedFilter[], parsed: ParsedRun, runId: string): void {
  const out = guardedOutput(process.stdout);
  for (const u of unmatched) {
    const text = `WARNING: ${u.option} ${u.values.map((v) => `"${v}"`).join(', ')} matched no update found on any host; ${u.seen.length > 0 ? `the scans found: ${u.seen.join(', ')}` : 'the scans found no update at all'}. Check the spelling: nothing was done for it.`;
    if (parsed.output.logFormat === 'json')
      out.write(
        `${JSON.stringify({ at: new Date().toISOString(), runId, kind: 'filter-unmatched', ...u, message: text })}\n`,
      );
    else out.write(`${text}\n`);
    guardedOutput(process.stderr).write(`patchline: ${text}\n`);
  }
}

export async function runJob(parsed: ParsedRun): Promise<number> {
  const stateFile = parsed.output.stateFile ?? defaultStateFile();
  // Guard the output first: `… | tee log` then Ctrl-C closes the pipe; a write must not kill the run.
  const log = makeLog(parsed);
  guardedOutput(process.stderr);
  if (parsed.output.reportFile) checkReportTarget(parsed.output.reportFile);
  let targets: readonly string[] = [];
  let offlineCab: string | null = null;
  if (parsed.kind === 'new') {
    targets = parsed.config.labScenario === null ? parsed.config.targets : await checkLabTargets(parsed.config);
    // Real servers: no scenario knows the product names, the imported catalog (if any) does.
    if (parsed.config.labScenario === null && parsed.config.filters.products)
      await checkCatalogProducts(stateFile, parsed.config.filters.products);
    if (parsed.config.offlineCab !== null) offlineCab = await localOfflineCab(parsed.config.offlineCab, stateFile);
  } else if (!existsSync(stateFile)) {
    // A resume never creates a state file: a wrong --state would leave an empty one behind.
    throw usageError(
      'RUN_NOT_FOUND',
      `No state file ${stateFile}, so no run ${parsed.runId} to resume. Pass the --state file the run was started with.`,
      { context: { run: parsed.runId, file: stateFile } },
    );
  }

  const store = await openStore(stateFile);
  let runId: string;
  let meta: RunMeta;
  let reportFiles: string[];
  // One connector per run: a second --resume of a run still being driven is refused.
  let lock: RunLock | null = null;
  try {
    if (parsed.kind === 'new') {
      runId = newRunId(systemClock.now());
      lock = lockRun(stateFile, runId);
      meta = {
        transportConfig:
          parsed.config.windows !== null
            ? { kind: 'windows', windows: parsed.config.windows, clientVersion: clientVersion() }
            : parsed.config.ssh !== null
              ? {
                  kind: 'ssh',
                  ssh: parsed.config.ssh,
                  stateFile: resolve(stateFile),
                  ...(parsed.config.labScenario !== null
                    ? { lab: { scenario: resolve(parsed.config.labScenario), dir: labDirFor(stateFile, runId) } }
                    : {}),
                }
              : {
                  kind: 'lab',
                  scenario: resolve(parsed.config.labScenario!),
                  dir: labDirFor(stateFile, runId),
                  inProcess: parsed.config.labInProcess,
                },
        ...(parsed.output.reportFile ? { reportFile: resolve(parsed.output.reportFile) } : {}),
        ...(parsed.config.offlineCab ? { offlineCab: parsed.config.offlineCab } : {}),
      };
      reportFiles = meta.reportFile ? [meta.reportFile] : [];
    } else {
      runId = parsed.runId;
      const saved = await loadForResume(store, parsed, stateFile);
      lock = lockRun(stateFile, runId);
      meta = saved.meta as RunMeta;
      const given = parsed.output.reportFile ? resolve(parsed.output.reportFile) : null;
      reportFiles = [...new Set([meta.reportFile, given].filter((f): f is string => Boolean(f)))];
      if (await isFinished(store, runId)) {
        const done = (await loadRunReport({ store }, runId))!;
        if (given)
          await writeReportFile(
            given,
            (await completeReport(store, runId, done.report, meta, (await loadRunOptions({ store }, runId))!.filters))
              .report,
          );
        process.stdout.write(
          `Run ${runId} is already finished: ${done.report.run.outcome}, exit ${done.exitCode}, at ${done.report.run.finishedAt}. Nothing to resume${given ? `; the report was written to ${given}` : ''}.\n`,
        );
        lock.release();
        await store.close();
        return done.exitCode;
      }
      if (given && !meta.reportFile) {
        // The run had no report file: this one becomes its report file for later resumes too.
        meta = { ...meta, reportFile: given };
        await new RunsRepo(store.db).setOptions(
          runId,
          JSON.stringify({ ...JSON.parse((await new RunsRepo(store.db).getRun(runId))!.optionsJson), meta }),
        );
      }
    }
  } catch (error) {
    lock?.release();
    await store.close();
    throw error;
  }
  const runLock = lock;

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write(
        `\npatchline: ${name} received: stopping cleanly (no new work; running updates are aborted). Send it again to quit at once.\n`,
      );
      controller.abort(new PatchlineError('CANCELLED', `cancelled by ${name}`, { exitCode: EXIT.CANCELLED }));
    } else {
      process.exit(EXIT.CANCELLED);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const transportConfig = meta.transportConfig!;
  let transport;
  if (transportConfig.kind === 'ssh' || transportConfig.kind === 'windows') {
    try {
      ({ transport, targets } =
        transportConfig.kind === 'ssh'
          ? await openSshRunTransport(transportConfig, targets)
          : await openWindowsRunTransport(transportConfig, targets));
    } catch (error) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      log.close();
      runLock.release();
      await store.close();
      throw error;
    }
  } else {
    // --lab-inprocess: agents run inside the (still detached) lab daemon, not one process per task.
    transport = openLabTransport({
      scenarioPath: transportConfig.scenario,
      dir: transportConfig.dir,
      mode: transportConfig.inProcess ? 'inprocess' : 'process',
      detached: true,
    });
  }
  const timing =
    transportConfig.kind === 'lab'
      ? LAB_TIMING
      : transportConfig.kind === 'ssh' && transportConfig.lab
        ? SSH_LAB_TIMING
        : undefined;
  const deps: EngineDeps = {
    store,
    transport,
    clock: systemClock,
    log: (e) => log.write(e),
    ...(timing ? { timing } : {}),
  };
  const resume = resumeCommand(runId, stateFile, isDefaultState(stateFile));

  let result: RunResult;
  try {
    try {
      result =
        parsed.kind === 'new'
          ? await startRun(
              deps,
              toEngineOptions(
                await withLabDefaults(parsed.config),
                targets,
                offlineCab,
                runId,
                meta,
                systemClock.now(),
              ),
              controller.signal,
            )
          : await resumeRun(
              deps,
              runId,
              controller.signal,
              parsed.deadlineMs === null
                ? undefined
                : { deadlineAt: new Date(systemClock.now().getTime() + parsed.deadlineMs) },
            );
    } catch (error) {
      // An internal error (or a store failure) mid-run: the saved state is the truth; report it.
      log.close();
      await writeFailureReport(store, runId, reportFiles, error);
      if (error instanceof PatchlineError && error.exitCode !== EXIT.USAGE)
        process.stderr.write(
          `patchline: the run's state is saved; after fixing the cause, resume it with: ${resume}\n`,
        );
      throw error;
    }
    log.close();
    const filters = parsed.kind === 'new' ? parsed.config.filters : (await loadRunOptions({ store }, runId))!.filters;
    const { report, unmatched } = await completeReport(store, runId, result.report, meta, filters);
    warnUnmatched(unmatched, parsed, runId);
    for (const file of reportFiles) await writeReportFile(file, report);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await transport.close();
    runLock.release();
    await store.close();
  }

  // A finished run needs its virtual hosts no more; a cancelled or timed-out one keeps them for its resume.
  if (transportConfig.kind === 'lab' && result.exitCode !== EXIT.CANCELLED && result.exitCode !== EXIT.DEADLINE)
    await stopLabDaemon(transportConfig.dir);
  if (RESUMABLE_EXITS.includes(result.exitCode))
    process.stderr.write(`patchline: run ${runId} ended with exit ${result.exitCode}; continue it with: ${resume}\n`);
  return result.exitCode;
}

/** The report of a run that stopped on an error: its saved state, exit 70, and the error. */
async function writeFailureReport(
  store: Store,
  runId: string,
  files: readonly string[],
  error: unknown,
): Promise<void> {
  if (files.length === 0) return;
  const saved = await loadRunReport({ store }, runId).catch((cause: unknown) => {
    process.stderr.write(
      `patchline: the run's saved state could not be read for the report: ${(cause as Error).message}\n`,
    );
    return null;
  });
  const code = error instanceof PatchlineError ? error.code : 'INTERNAL';
  const exitCode = error instanceof PatchlineError ? error.exitCode : EXIT.INTERNAL;
  const report = {
    run: { ...(saved?.report.run ?? { id: runId, startedAt: null, finishedAt: null }), outcome: 'error', exitCode },
    hosts: saved?.report.hosts ?? [],
    error: { code, message: (error as Error)?.message ?? String(error) },
  };
  for (const file of files) {
    await writeReportFile(file, report).catch((cause: unknown) =>
      process.stderr.write(`patchline: ${(cause as Error).message}\n`),
    );
  }
}

/** Reads a list file's bytes (decoded by run-options, which knows the encodings Windows writes). */
export const readListFile = (file: string): Uint8Array => readFileSync(file);
