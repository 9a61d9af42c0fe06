/**
 * Shared set-up for the SSH transport's end-to-end tests: the SSH lab (real sshd per host) with
 * the real SSH transport, a temp state file, run options, and a projection of a report that two
 * transports must agree on (outcome, cycles, reboots, every update's result).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRun } from '../src/engine/run.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { EngineTiming, RunLogEvent, RunOptions, RunResult } from '../src/engine/types.ts';
import type { RunReport } from '../src/domain/report.ts';
import { openStore } from '../src/store/db.ts';
import {
  openSshLabTransport,
  type SshLabTransport,
  type SshLabTransportOptions,
} from '../src/lab/ssh/lab-transport.ts';
import { sshdUnavailableReason } from '../src/lab/ssh/sshd.ts';
import type { Transport } from '../src/transports/transport.ts';

/** Why these tests cannot run here (they need root and Debian's openssh-server), or false. */
export const SKIP_SSH: string | false = sshdUnavailableReason() ?? false;

export const SMALL = new URL('../examples/lab/small.yaml', import.meta.url).pathname;
export const PATCH_NIGHT = new URL('../examples/lab/patch-night.yaml', import.meta.url).pathname;

/** Lab hosts reboot in seconds; SSH round trips cost tens of ms: probe often, but not in a spin. */
export const SSH_LAB_TIMING: Partial<EngineTiming> = {
  probeInitialDelayMs: 100,
  probeMaxDelayMs: 400,
  agentPollMs: 1_000,
  streamSilenceMs: 15_000,
  agentRebootGraceMs: 3_000,
  launchTimeoutMs: 90_000,
};

export function options(targets: readonly string[], over: Partial<RunOptions> = {}): RunOptions {
  return {
    targets,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    maxCycles: 5,
    retries: 1,
    rebootTimeoutMs: 60_000,
    deadlineAt: null,
    parallel: 10,
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 30,
    logHandoverTimeoutSeconds: 30,
    ...over,
  };
}

/**
 * Runs `body`; when it fails, the error's message gains the end of every sshd log `logs` gives, so
 * a CI failure says what sshd saw (refused keys, closed connections, a server that never started).
 */
export async function explainedBySshd<T>(logs: () => Promise<string> | string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof Error) error.message += `\n${await logs()}`;
    throw error;
  }
}

/**
 * The end of every sshd.log under `dir` (a CLI run's lab keeps them under its hosts), and of the
 * SSH lab's own log (ssh-lab/lab.log: its daemon, sshd starts and stops, what its model refused).
 */
export function sshdLogsUnder(dir: string, lines = 20): string {
  let logs: string[];
  try {
    logs = (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
      .filter((p) => p.endsWith('/ssh/sshd.log') || p.endsWith('ssh-lab/lab.log'))
      .sort();
  } catch (error) {
    return `(no sshd logs under ${dir}: ${(error as Error).message})`;
  }
  if (logs.length === 0) return `(no sshd.log under ${dir})`;
  return logs
    .map((p) => `--- ${p} ---\n${readFileSync(join(dir, p), 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`)
    .join('\n');
}

export interface SshRun {
  readonly result: RunResult;
  readonly events: readonly RunLogEvent[];
  readonly notes: readonly { host: string; message: string }[];
  readonly labLog: readonly string[];
  readonly elapsedMs: number;
  /** The end of every host's sshd log, taken before the lab closed: for assertion messages. */
  readonly sshdLogs: string;
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs the engine over `transport` with a fresh state file. */
export async function runWith(
  transport: Transport,
  dir: string,
  runOptions: RunOptions,
  timing: Partial<EngineTiming> = SSH_LAB_TIMING,
): Promise<{ result: RunResult; events: RunLogEvent[]; elapsedMs: number }> {
  const store = await openStore(join(dir, `state-${Math.random().toString(36).slice(2)}.sqlite`));
  const events: RunLogEvent[] = [];
  const started = Date.now();
  try {
    const result = await startRun(
      { store, transport, clock: systemClock, log: (e) => events.push(e), timing },
      runOptions,
      new AbortController().signal,
    );
    return { result, events, elapsedMs: Date.now() - started };
  } finally {
    await store.close();
  }
}

/** Opens the SSH lab transport, runs, closes. */
export async function sshLabRun(
  scenarioPath: string,
  dir: string,
  runOptions: (hosts: readonly string[]) => RunOptions,
  over: Partial<SshLabTransportOptions> = {},
): Promise<SshRun & { transport: SshLabTransport }> {
  const notes: { host: string; message: string }[] = [];
  const labLog: string[] = [];
  const transport = await openSshLabTransport({
    scenarioPath,
    dir: join(dir, 'lab'),
    note: (host, message) => notes.push({ host, message }),
    log: (m) => labLog.push(m),
    logPollMs: 200,
    ...over,
  });
  try {
    const { result, events, elapsedMs } = await explainedBySshd(
      () => transport.lab.sshdLogs(),
      async () => runWith(transport, dir, runOptions(await transport.listTargets())),
    );
    return { result, events, notes, labLog, elapsedMs, transport, sshdLogs: await transport.lab.sshdLogs() };
  } finally {
    await transport.close();
  }
}

/** What two transports must agree on, host by host. */
export function projection(report: RunReport) {
  return Object.fromEntries(
    [...report.hosts]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((h) => [
        h.name,
        {
          outcome: h.outcome,
          cycles: h.cycles,
          reboots: h.reboots,
          updates: [...h.updates]
            .map((u) => `${u.kb ?? u.updateId} ${u.result}${u.hresult ? ` ${u.hresult}` : ''}`)
            .sort(),
        },
      ]),
  );
}
