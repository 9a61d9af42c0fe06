/**
 * bench/server-fleet: how many enrolled agents one server process holds, and how fast it takes
 * their reports and reaches them with an action. The server (server-fleet-server.ts) and the fleet
 * of lightweight simulated agents (server-fleet-agents.ts, the real agent protocol over loopback)
 * run in separate processes, so the server's RSS and CPU are its own. One JSON line per size:
 *
 *   agents             enrolled agents
 *   connected          check-ins held open at the server when measured (every agent, ideally)
 *   reportsPerSecond   full scan reports (150 updates each, from a 4,000-update catalog) ingested per second
 *   actionLatencyP99Ms action created → every agent received it (held check-in answered), p99 over ACTION_ROUNDS
 *   serverPeakRssMB, serverCpuSeconds  of the server process over the whole size
 *
 *   npm run bench:server-fleet                   # 1,000 and 10,000 agents
 *   node --import tsx bench/server-fleet.ts --sizes 500
 *
 * Targets (issue 7, two cores): 10,000 connected, ≥ 1,000 reports/s, p99 ≤ 2 s, RSS ≤ 1 GB.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ACTION_ROUNDS = 5;
/** Full reports per agent: the first creates its inventory, the next repeat it unchanged. */
const REPORT_ROUNDS = 2;
/** `sqlite` (default: the whole server on SQLite, as `patchline server` runs) or `memory` (the gateway's in-memory store alone). */
const STORE = process.env.BENCH_STORE ?? 'sqlite';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const sizes = (arg('--sizes') ?? '1000,10000').split(',').map(Number);
/** BENCH_PROF=DIR (or 1: /tmp/fleetprof): the server's CPU profile of each report round and of the action rounds, written there. */
const PROF_DIR = process.env.BENCH_PROF
  ? process.env.BENCH_PROF === '1'
    ? '/tmp/fleetprof'
    : process.env.BENCH_PROF
  : null;

function child(file: string, args: string[]): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

async function ask<T>(proc: ChildProcess, cmd: object, reply: string): Promise<T> {
  const answer = new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null): void =>
      reject(new Error(`child exited (${code}) while waiting for ${reply}`));
    const on = (msg: { reply: string } & T): void => {
      if (msg.reply !== reply) return;
      proc.off('message', on);
      proc.off('exit', onExit);
      resolve(msg);
    };
    proc.on('message', on);
    proc.once('exit', onExit);
  });
  proc.send(cmd);
  return answer;
}

async function waitFor<T>(proc: ChildProcess, reply: string): Promise<T> {
  for (;;) {
    const [msg] = (await once(proc, 'message')) as [{ reply: string } & T];
    if (msg.reply === reply) return msg;
  }
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1))]!;
};
const round1 = (n: number): number => Math.round(n * 10) / 10;

for (const agents of sizes) {
  const server = child(STORE === 'sqlite' ? './server-fleet-server-sql.ts' : './server-fleet-server.ts', []);
  const ready = await waitFor<{ url: string; token: string }>(server, 'ready');
  const fleet = child('./server-fleet-agents.ts', [ready.url, ready.token, String(agents)]);
  const t0 = Date.now();
  const note = (m: string): boolean =>
    process.stderr.write(`[${agents}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}\n`);
  await waitFor(fleet, 'enrolled');
  note('enrolled');
  // Every agent's check-in is held at the server: that is "connected".
  let stats = await ask<{ connected: number }>(server, { cmd: 'stats' }, 'stats');
  for (let i = 0; stats.connected < agents && i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100));
    stats = await ask<{ connected: number }>(server, { cmd: 'stats' }, 'stats');
  }
  const connected = stats.connected;
  note(`${connected} connected`);

  // Round 1 creates every host's inventory (150 new rows each); round 2 repeats the same full
  // report (what a fleet sends day after day: nothing changed, nothing to write but the seq).
  const rounds: { reports: number; failed: number; seconds: number; cpuMs: number }[] = [];
  for (let round = 0; round < REPORT_ROUNDS; round++) {
    if (PROF_DIR) await ask(server, { cmd: 'profile-start' }, 'profile-start');
    const cpu0 = (await ask<{ cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats')).cpuSeconds;
    const r = await ask<{ reports: number; failed: number; seconds: number }>(
      fleet,
      { cmd: 'reports', perAgent: 1 },
      'reports',
    );
    const cpu1 = (await ask<{ cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats')).cpuSeconds;
    rounds.push({ ...r, cpuMs: (cpu1 - cpu0) * 1000 });
    if (PROF_DIR) {
      const file = `${PROF_DIR}/server-${agents}-report-round-${round + 1}.cpuprofile`;
      await ask(server, { cmd: 'profile-stop', file }, 'profile-stop');
      note(`profile: ${file}`);
    }
    note(
      `report round ${round + 1}: ${r.reports} reports in ${r.seconds.toFixed(1)} s, server CPU ${(cpu1 - cpu0).toFixed(1)} s`,
    );
  }
  const reports = {
    reports: rounds.reduce((n, r) => n + r.reports, 0),
    failed: rounds.reduce((n, r) => n + r.failed, 0),
    seconds: rounds.reduce((n, r) => n + r.seconds, 0),
  };
  if (PROF_DIR) await ask(server, { cmd: 'profile-start' }, 'profile-start');
  const conn0 = (await ask<{ connections?: number }>(server, { cmd: 'stats' }, 'stats')).connections ?? 0;
  let checkinErrors: Record<string, number> = {};
  const latencies: number[] = [];
  const actionCpuMs: number[] = [];
  let missed = 0;
  for (let round = 0; round < ACTION_ROUNDS; round++) {
    // Let every agent re-arm its check-in first (it answered the previous action).
    for (let i = 0; i < 600; i++) {
      if ((await ask<{ connected: number }>(server, { cmd: 'stats' }, 'stats')).connected >= connected) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const cpu0 = (await ask<{ cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats')).cpuSeconds;
    const action = await ask<{ actionId: string; createdAtMs: number }>(server, { cmd: 'action' }, 'action');
    let times: (number | null)[] = [];
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const got = await ask<{ times: (number | null)[]; checkinErrors: Record<string, number> }>(
        fleet,
        { cmd: 'received', actionId: action.actionId },
        'received',
      );
      times = got.times;
      checkinErrors = got.checkinErrors;
      if (times.every((t) => t !== null)) break;
    }
    const roundLatencies = times.flatMap((t) => (t === null ? [] : [t - action.createdAtMs]));
    missed += times.length - roundLatencies.length;
    latencies.push(...roundLatencies);
    // Includes the received acknowledgements and the re-armed check-ins that follow each answer.
    const cpuMs = ((await ask<{ cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats')).cpuSeconds - cpu0) * 1000;
    actionCpuMs.push(cpuMs);
    note(
      `action round ${round + 1}: p50 ${Math.round(percentile(roundLatencies, 0.5))} ms, max ${Math.round(Math.max(...roundLatencies))} ms, missed ${times.length - roundLatencies.length}, server CPU ${Math.round(cpuMs)} ms`,
    );
  }
  const connectionsDuringActions =
    ((await ask<{ connections?: number }>(server, { cmd: 'stats' }, 'stats')).connections ?? 0) - conn0;
  if (PROF_DIR) {
    const file = `${PROF_DIR}/server-${agents}-actions.cpuprofile`;
    await ask(server, { cmd: 'profile-stop', file }, 'profile-stop');
    note(`profile: ${file}`);
  }
  const final = await ask<{ peakRssMB: number; cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats');
  process.stdout.write(
    `${JSON.stringify({
      bench: 'server-fleet',
      store: STORE,
      agents,
      connected,
      reportsPerSecond: Math.round(reports.reports / reports.seconds),
      reportsPerSecondNewInventory: Math.round(rounds[0]!.reports / rounds[0]!.seconds),
      reportsPerSecondUnchanged: Math.round(rounds[1]!.reports / rounds[1]!.seconds),
      serverCpuMsPerReportNewInventory: round1(rounds[0]!.cpuMs / rounds[0]!.reports),
      serverCpuMsPerReportUnchanged: round1(rounds[1]!.cpuMs / rounds[1]!.reports),
      reportsFailed: reports.failed,
      reportUpdates: 150,
      catalogUpdates: Number(process.env.BENCH_CATALOG_UPDATES ?? 350_000),
      actionLatencyP50Ms: Math.round(percentile(latencies, 0.5)),
      actionLatencyP99Ms: Math.round(percentile(latencies, 0.99)),
      actionLatencyMaxMs: Math.round(Math.max(...latencies)),
      actionServerCpuMs: Math.round(percentile(actionCpuMs, 0.5)),
      actionsMissed: missed,
      // New connections the server accepted during the action rounds, and the agents' failed
      // check-ins by error code: agents keep their connections, so both should be near 0.
      connectionsDuringActions,
      checkinErrors,
      serverPeakRssMB: final.peakRssMB,
      serverCpuSeconds: round1(final.cpuSeconds),
      // The machine is shared: its load while this size ran says how much of two cores the server had.
      loadAverage1m: round1(loadavg()[0]!),
      cpus: cpus().length,
    })}\n`,
  );
  fleet.send({ cmd: 'stop' });
  server.send({ cmd: 'stop' });
  await Promise.all([once(fleet, 'exit'), once(server, 'exit')]);
}
