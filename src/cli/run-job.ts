/**
 * Runs a validated `patchline run`: opens the state, builds the lab transport, hands the run to
 * the engine, renders the live log, writes the report, and returns the exit code.
 *
 * SIGINT/SIGTERM cancel the run cleanly (no new work, running agents aborted, state saved,
 * exit 5); a second signal exits at once (state is still consistent: every transition is
 * persisted before it acts).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EXIT, PatchlineError, usageError } from '../domain/errors.ts';
import { loadRunOptions, newRunId, resumeRun, startRun, systemClock, type EngineDeps, type RunOptions, type RunResult } from '../engine/index.ts';
import { loadScenario } from '../lab/scenario.ts';
import { openLabTransport, stopLabDaemon } from '../lab/daemon-main.ts';
import { openStore } from '../store/db.ts';
import { defaultStateFile } from '../store/paths.ts';
import { DEFAULT_LOG_HANDOVER_TIMEOUT_MS, type ParsedRun, type RunConfig } from './run-options.ts';
import { jsonLog, textLog, type LiveLog } from './live-log.ts';
import { writeReportFile } from './report-file.ts';

/** What the CLI keeps with a run so `--resume` can rebuild its transport. */
export interface TransportConfig {
  readonly kind: 'lab';
  readonly scenario: string;
  readonly dir: string;
  readonly inProcess: boolean;
}

/**
 * Lab hosts reboot in seconds (scenario durations × timeScale), so the engine looks at them often:
 * a probe is a local HTTP call, and probing at most every 250 ms keeps the time lost between a
 * host's return and the engine noticing it to ~0.1 s per reboot (bench/run-overhead; with probes
 * backing off to 2 s it was ~1.2 s per reboot, a third of the run's overhead). A lab host's reboot
 * starts the moment the agent asks, so 2 s of "same boot" after a failed agent reboot means it
 * did not happen. Real servers keep the engine's defaults (probes from 5 s up to a minute).
 */
export const LAB_TIMING = { probeInitialDelayMs: 100, probeMaxDelayMs: 250, agentPollMs: 1_000, streamSilenceMs: 15_000, agentRebootGraceMs: 2_000 } as const;

function labDirFor(stateFile: string, runId: string): string {
  return join(dirname(resolve(stateFile)), 'lab', runId);
}

/** Checks the scenario and the target names; no names means every host of the scenario. */
async function checkLabTargets(config: RunConfig): Promise<readonly string[]> {
  // Validate before anything starts: a bad scenario or an unknown host is a usage error (64).
  const scenario = await loadScenario(config.labScenario!);
  const known = new Set(scenario.hosts.map((h) => h.name.toLowerCase()));
  const unknown = config.targets.filter((t) => !known.has(t.toLowerCase()));
  if (unknown.length > 0) {
    const some = scenario.hosts.slice(0, 5).map((h) => h.name).join(', ');
    throw usageError('UNKNOWN_HOST', `${unknown.join(', ')}: not ${unknown.length === 1 ? 'a host' : 'hosts'} of the lab scenario ${config.labScenario} (it has ${scenario.hosts.length}: ${some}${scenario.hosts.length > 5 ? ', …' : ''}).`);
  }
  if (config.offlineCab !== null && !/^https?:\/\//i.test(config.offlineCab) && !existsSync(config.offlineCab)) {
    throw usageError('OFFLINE_CAB_NOT_FOUND', `--offline-cab ${config.offlineCab}: no such file. Give the path (or http(s) URL) of a wsusscn2.cab; \`patchline lab catalog SCENARIO --out FILE\` makes a lab one.`);
  }
  return config.targets.length > 0 ? config.targets : scenario.hosts.map((h) => h.name);
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
  const result = await syncCatalog({ url: source, dir: join(dirname(resolve(stateFile)), 'offline-cab'), dispatcher: proxyDispatcher(undefined), verify: async () => {} });
  return result.file;
}

function toEngineOptions(config: RunConfig, targets: readonly string[], offlineCab: string | null, runId: string, transport: TransportConfig, now: Date): RunOptions {
  return {
    runId,
    meta: { transportConfig: transport },
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
  if (parsed.output.logFormat === 'json') return jsonLog(process.stdout);
  const tty = Boolean(process.stdout.isTTY) && parsed.output.progress;
  return textLog(process.stdout, { tty, color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR });
}

export async function runJob(parsed: ParsedRun): Promise<number> {
  const stateFile = parsed.output.stateFile ?? defaultStateFile();
  let targets: readonly string[] = [];
  let offlineCab: string | null = null;
  if (parsed.kind === 'new') {
    targets = await checkLabTargets(parsed.config);
    if (parsed.config.offlineCab !== null) offlineCab = await localOfflineCab(parsed.config.offlineCab, stateFile);
  }

  const store = await openStore(stateFile);
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write(`\npatchline: ${name} received: stopping cleanly (no new work; running updates are aborted). Send it again to quit at once.\n`);
      controller.abort(new PatchlineError('CANCELLED', `cancelled by ${name}`, { exitCode: EXIT.CANCELLED }));
    } else {
      process.exit(EXIT.CANCELLED);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const log = makeLog(parsed);
  let transportConfig: TransportConfig;
  let runId: string;
  if (parsed.kind === 'new') {
    runId = newRunId(systemClock.now());
    transportConfig = { kind: 'lab', scenario: resolve(parsed.config.labScenario!), dir: labDirFor(stateFile, runId), inProcess: parsed.config.labInProcess };
  } else {
    runId = parsed.runId;
    const saved = await savedTransportConfig(store, runId);
    transportConfig = saved;
  }
  // --lab-inprocess: agents run inside the (still detached) lab daemon, not one process per task.
  const transport = openLabTransport({ scenarioPath: transportConfig.scenario, dir: transportConfig.dir, mode: transportConfig.inProcess ? 'inprocess' : 'process', detached: true });
  const deps: EngineDeps = { store, transport, clock: systemClock, log: (e) => log.write(e), timing: LAB_TIMING };

  let result: RunResult;
  try {
    result = parsed.kind === 'new'
      ? await startRun(deps, toEngineOptions(parsed.config, targets, offlineCab, runId, transportConfig, systemClock.now()), controller.signal)
      : await resumeRun(deps, runId, controller.signal, parsed.deadlineMs === null ? undefined : { deadlineAt: new Date(systemClock.now().getTime() + parsed.deadlineMs) });
  } finally {
    log.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await transport.close();
    await store.close();
  }

  // A finished run needs its virtual hosts no more; a cancelled or timed-out one may be resumed.
  if (result.exitCode !== EXIT.CANCELLED && result.exitCode !== EXIT.DEADLINE) {
    await stopLabDaemon(transportConfig.dir);
  }
  if (parsed.output.reportFile) await writeReportFile(parsed.output.reportFile, result.report);
  return result.exitCode;
}

async function savedTransportConfig(store: Awaited<ReturnType<typeof openStore>>, runId: string): Promise<TransportConfig> {
  const options = await loadRunOptions({ store }, runId);
  if (!options) throw usageError('RUN_NOT_FOUND', `No run ${runId} in this state file. Pass the --state file the run was started with.`, { context: { run: runId } });
  const meta = options.meta as { transportConfig?: TransportConfig } | undefined;
  if (!meta?.transportConfig) throw usageError('RUN_NOT_RESUMABLE', `Run ${runId} does not record how its targets were reached; it cannot be resumed by this version.`);
  return meta.transportConfig;
}
