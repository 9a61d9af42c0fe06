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
import { fileURLToPath } from 'node:url';

const ACTION_ROUNDS = 5;
const REPORTS_PER_AGENT = 2;
/** `sqlite` (default: the whole server on SQLite, as `patchline server` runs) or `memory` (the gateway's in-memory store alone). */
const STORE = process.env.BENCH_STORE ?? 'sqlite';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const sizes = (arg('--sizes') ?? '1000,10000').split(',').map(Number);

function child(file: string, args: string[]): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), args, {
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.BENCH_PROF && file.includes('-server') ? ['--cpu-prof', '--cpu-prof-dir=/tmp/fleetprof'] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

async function ask<T>(proc: ChildProcess, cmd: object, reply: string): Promise<T> {
  const answer = new Promise<T>((resolve, reject) => {
    const on = (msg: { reply: string } & T): void => {
      if (msg.reply !== reply) return;
      proc.off('message', on);
      resolve(msg);
    };
    proc.on('message', on);
    proc.once('exit', (code) => reject(new Error(`child exited (${code}) while waiting for ${reply}`)));
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

const p99 = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
};

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

  const reports = await ask<{ reports: number; failed: number; seconds: number }>(
    fleet,
    { cmd: 'reports', perAgent: REPORTS_PER_AGENT },
    'reports',
  );

  note(`${reports.reports} reports in ${reports.seconds.toFixed(1)} s`);
  const latencies: number[] = [];
  let missed = 0;
  for (let round = 0; round < ACTION_ROUNDS; round++) {
    // Let every agent re-arm its check-in first (it answered the previous action).
    for (let i = 0; i < 600; i++) {
      if ((await ask<{ connected: number }>(server, { cmd: 'stats' }, 'stats')).connected >= connected) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const action = await ask<{ actionId: string; createdAtMs: number }>(server, { cmd: 'action' }, 'action');
    let times: (number | null)[] = [];
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      times = (
        await ask<{ times: (number | null)[] }>(fleet, { cmd: 'received', actionId: action.actionId }, 'received')
      ).times;
      if (times.every((t) => t !== null)) break;
    }
    for (const t of times) {
      if (t === null) missed++;
      else latencies.push(t - action.createdAtMs);
    }
  }
  const final = await ask<{ peakRssMB: number; cpuSeconds: number }>(server, { cmd: 'stats' }, 'stats');
  process.stdout.write(
    `${JSON.stringify({
      bench: 'server-fleet',
      store: STORE,
      agents,
      connected,
      reportsPerSecond: Math.round(reports.reports / reports.seconds),
      reportsFailed: reports.failed,
      reportUpdates: 150,
      actionLatencyP99Ms: Math.round(p99(latencies)),
      actionLatencyMaxMs: Math.round(Math.max(...latencies)),
      actionsMissed: missed,
      serverPeakRssMB: final.peakRssMB,
      serverCpuSeconds: Math.round(final.cpuSeconds * 10) / 10,
    })}\n`,
  );
  fleet.send({ cmd: 'stop' });
  server.send({ cmd: 'stop' });
  await Promise.all([once(fleet, 'exit'), once(server, 'exit')]);
}
