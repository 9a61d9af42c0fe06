/**
 * bench/run-overhead: how much wall time the connector adds to a lab patch night, per configuration.
 *
 * Generates (in a temp dir) a scenario with fixed simulated durations: every host needs a chain of
 * CHAIN updates, each installed alone in its own cycle (it requires the previous one *and its
 * reboot*) and each needing a reboot, then one last cycle whose scan finds nothing. It runs that
 * night through the real engine and the lab transport in in-process mode (the daemon, its virtual
 * hosts and their agents live in the connector's process), exactly as `patchline run
 * --lab-inprocess` does (same engine timing), and prints one JSON line per configuration:
 *
 *   lowerBoundSeconds = max(slowest host's simulated work, total simulated work / parallel)
 *   simulated work of a host = Σ over its cycles (install time + reboot time + servicing after boot)
 *   overheadPerHostCycleSeconds = (wall − lowerBound) × parallel / total host cycles
 *     (the time one slot spends per host cycle on top of the simulated work)
 *
 * Each configuration runs in a child process of its own, so `peakRssMB` (the child's maxRSS) is
 * that configuration's alone. In in-process mode that figure includes the simulated hosts (agents,
 * providers, the daemon, their HTTP connections): `rssBeforeRunMB` is the RSS once the lab is up
 * (daemon + idle hosts, modules loaded) and before the run starts; the engine's own share is not
 * separated from the busy hosts' (the process-path line below is the connector without hosts).
 *
 * The process-path line (5 hosts, `mode: process`: a detached daemon, one agent process and one
 * provider process per cycle) has `rssIncludesHosts: false`: its peak RSS is the connector alone.
 *
 *   npm run bench:run-overhead                   # 50 hosts --parallel 50, 500 hosts --parallel 100, 5 hosts process path
 *   node --import tsx bench/run-overhead.ts --only 50:50,500:500 --time-scale 0.02
 *   BENCH_TRACE=/tmp/trace.jsonl …               # also write every run log event with a timestamp (where the time goes)
 *   BENCH_KEEP=1 …                               # keep the temp dir (lab/daemon.log has the agents' diagnostics)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LAB_TIMING } from '../src/cli/run-job.ts';
import { startRun, systemClock, type RunLogEvent } from '../src/engine/index.ts';
import { openLabTransport, stopLabDaemon } from '../src/lab/daemon-main.ts';
import { SERVICING_AFTER_BOOT_SECONDS } from '../src/lab/daemon.ts';
import { openStore } from '../src/store/db.ts';

/** Unscaled simulated durations (seconds) of the generated scenario. */
const INSTALL_SECONDS = 60;
const REBOOT_SECONDS = 60;
/** Updates in each host's chain: CHAIN cycles with work, plus one final cycle that finds nothing. */
const CHAIN = 3;
/** 0.05: one host cycle with work is (60 + 60 + 20) s × 0.05 = 7 s of simulated work. */
const DEFAULT_TIME_SCALE = 0.05;
const CHILD_TIMEOUT_MS = 20 * 60 * 1000;
/** Agents whose ack was lost hand their log over within this; a killed in-process agent stops at once. */
const LOG_HANDOVER_TIMEOUT_SECONDS = 60;
const RSS_SAMPLE_MS = 200;
const MB = 1024 * 1024;

interface Config {
  readonly hosts: number;
  readonly parallel: number;
  /**
   * inprocess: the lab daemon and its agents inside the connector's process (peak RSS includes the
   * simulated hosts); detached: the daemon in its own process with in-process agents, as
   * `patchline run --lab-inprocess` runs it (peak RSS is the connector's alone, the daemon's is
   * reported beside it); process: a detached daemon with one agent and one provider process per task.
   */
  readonly mode: 'inprocess' | 'detached' | 'process';
}

const DEFAULT_CONFIGS: readonly Config[] = [
  { hosts: 50, parallel: 50, mode: 'inprocess' },
  { hosts: 500, parallel: 100, mode: 'inprocess' },
  { hosts: 500, parallel: 100, mode: 'detached' },
  { hosts: 5, parallel: 5, mode: 'process' },
];

/** The generated scenario (JSON is valid scenario syntax). */
export function benchScenario(hosts: number, timeScale: number): object {
  const catalog = Array.from({ length: CHAIN }, (_, i) => ({
    key: `chain-${i + 1}`,
    kb: 5090000 + i,
    title: `Bench chain update ${i + 1} (KB${5090000 + i})`,
    classification: 'Security Updates',
    severity: 'Critical',
    products: ['Windows Server 2022'],
    sizeMB: 1,
    reboot: 'always',
    installSeconds: INSTALL_SECONDS,
    released: '2026-11-10',
    ...(i > 0 ? { requires: [`chain-${i}`] } : {}),
  }));
  const width = String(hosts).length;
  return {
    timeScale,
    payloadScale: 0.001,
    catalog,
    hosts: [
      {
        name: `bench{${'1'.padStart(width, '0')}..${String(hosts)}}`,
        product: 'Windows Server 2022',
        rebootSeconds: REBOOT_SECONDS,
      },
    ],
  };
}

/** Simulated seconds one host needs: each work cycle installs one update, reboots, and services after the boot. */
export function hostWorkSeconds(timeScale: number): number {
  return CHAIN * (INSTALL_SECONDS + REBOOT_SECONDS + SERVICING_AFTER_BOOT_SECONDS) * timeScale;
}

/** The lower bound as defined by the issue: max(slowest host, total / parallel). */
export function lowerBoundSeconds(hosts: number, parallel: number, timeScale: number): number {
  const perHost = hostWorkSeconds(timeScale);
  return Math.max(perHost, (perHost * hosts) / Math.min(parallel, hosts));
}

async function runOne(config: Config, timeScale: number): Promise<object> {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-bench-run-'));
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, RSS_SAMPLE_MS);
  try {
    const scenarioPath = join(dir, 'bench.json');
    await writeFile(scenarioPath, JSON.stringify(benchScenario(config.hosts, timeScale)));
    const store = await openStore(join(dir, 'state.db'));
    const transport = openLabTransport({
      scenarioPath,
      dir: join(dir, 'lab'),
      mode: config.mode === 'process' ? 'process' : 'inprocess',
      detached: config.mode !== 'inprocess',
    });
    const targets = Array.from(
      { length: config.hosts },
      (_, i) => `bench${String(i + 1).padStart(String(config.hosts).length, '0')}`,
    );
    const counts = new Map<string, number>();
    const trace: string[] = [];
    const log = (e: RunLogEvent) => {
      counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
      if (process.env.BENCH_TRACE) trace.push(JSON.stringify({ t: performance.now(), ...e }));
    };
    // Start the lab before the clock runs: the daemon's start-up is not part of a patch night.
    await transport.resolveTargets(targets);
    const rssBeforeRun = process.memoryUsage().rss;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let result;
    let daemonPeakRssMB: number | null = null;
    try {
      result = await startRun(
        { store, transport, clock: systemClock, log, timing: LAB_TIMING },
        {
          targets,
          mode: 'install',
          reboot: 'if-required',
          filters: {},
          maxCycles: CHAIN + 2,
          retries: 1,
          rebootTimeoutMs: 10 * 60_000,
          deadlineAt: null,
          parallel: config.parallel,
          serverSelection: 'default',
          installerBusyTimeoutSeconds: 600,
          logHandoverTimeoutSeconds: LOG_HANDOVER_TIMEOUT_SECONDS,
        },
        AbortSignal.timeout(CHILD_TIMEOUT_MS),
      );
    } finally {
      await transport.close();
      await store.close();
      // A detached daemon stays up (so a connector can resume): read its peak RSS, then stop it.
      if (config.mode !== 'inprocess') {
        daemonPeakRssMB = await daemonPeakRss(join(dir, 'lab'));
        await stopLabDaemon(join(dir, 'lab'));
      }
    }
    const wallSeconds = (performance.now() - started) / 1000;
    if (process.env.BENCH_TRACE) await writeFile(process.env.BENCH_TRACE, trace.join('\n') + '\n');
    const cpu = process.cpuUsage(cpuBefore);
    const lb = lowerBoundSeconds(config.hosts, config.parallel, timeScale);
    const hostCycles = result.report.hosts.reduce((n, h) => n + h.cycles, 0);
    const outcomes: Record<string, number> = {};
    for (const h of result.report.hosts) outcomes[h.outcome] = (outcomes[h.outcome] ?? 0) + 1;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const maxRssMB = process.resourceUsage().maxRSS / 1024;
    return {
      hosts: config.hosts,
      parallel: config.parallel,
      mode: config.mode,
      timeScale,
      cyclesPerHost: CHAIN + 1,
      hostCycles,
      outcomes,
      exitCode: result.exitCode,
      wallSeconds: round(wallSeconds),
      lowerBoundSeconds: round(lb),
      ratio: round(wallSeconds / lb, 3),
      overheadPerHostCycleSeconds: round(
        ((wallSeconds - lb) * Math.min(config.parallel, config.hosts)) / hostCycles,
        3,
      ),
      cpuSeconds: round((cpu.user + cpu.system) / 1e6),
      peakRssMB: Math.round(Math.max(maxRssMB, peakRss / MB)),
      rssBeforeRunMB: Math.round(rssBeforeRun / MB),
      rssIncludesHosts: config.mode === 'inprocess',
      labDaemonPeakRssMB: daemonPeakRssMB,
      logEvents: Object.fromEntries(counts),
    };
  } finally {
    clearInterval(sampler);
    if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

/** The detached daemon's peak RSS (VmHWM, Linux), or null where /proc is not there. */
async function daemonPeakRss(labDir: string): Promise<number | null> {
  try {
    const { pid } = JSON.parse(await readFile(join(labDir, 'daemon.json'), 'utf8')) as { pid: number };
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 1024);
  } catch {
    return null; // not Linux, or the daemon already gone: the figure is simply not reported
  }
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function parseMode(mode: string | undefined): Config['mode'] {
  return mode === 'process' || mode === 'detached' ? mode : 'inprocess';
}

async function main(): Promise<void> {
  const timeScale = Number(arg('--time-scale') ?? DEFAULT_TIME_SCALE);
  const child = arg('--child');
  if (child !== undefined) {
    const [hosts, parallel, mode] = child.split(':');
    const figures = await runOne(
      { hosts: Number(hosts), parallel: Number(parallel), mode: parseMode(mode) },
      timeScale,
    );
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    return;
  }
  const only = arg('--only');
  const configs =
    only === undefined
      ? DEFAULT_CONFIGS
      : only.split(',').map((c) => {
          const [hosts, parallel, mode] = c.split(':');
          return { hosts: Number(hosts), parallel: Number(parallel), mode: parseMode(mode) } as Config;
        });
  const self = fileURLToPath(import.meta.url);
  for (const c of configs) {
    // One child per configuration: its peak RSS is this configuration's alone.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...process.execArgv, self, '--child', `${c.hosts}:${c.parallel}:${c.mode}`, '--time-scale', String(timeScale)],
      { timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 * MB },
    );
    process.stdout.write(stdout.trim().split('\n').at(-1) + '\n');
  }
}

await main();
