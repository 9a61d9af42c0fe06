/**
 * The lab server's agents: one enrolled AgentService per scenario host, the same code a Windows
 * host runs, talking to the server over real HTTP with the simulated WUA provider under it.
 *  - `in-process` (default; what large labs need): src/lab/fleet.ts in the server's process;
 *  - `process`: one `patchline server lab-agent` child process per host (a hidden command), so
 *    each agent has its own process, event loop and HTTP connections, as on real hosts.
 * Either way an agent's state lives in DATA/lab/hosts/<name>/agent: a re-run finds its credential
 * and does not enroll again. Hosts enroll with a token bound to their ring (pilot or broad).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { startLabFleet, type LabFleet } from '../lab/fleet.ts';
import { createPayloadStore } from '../lab/payloads.ts';
import { loadScenario } from '../lab/scenario.ts';
import { readFile } from 'node:fs/promises';
import type { Lab } from './server-lab.ts';

export const LAB_AGENT_MODES = ['in-process', 'process'] as const;
export type LabAgentMode = (typeof LAB_AGENT_MODES)[number];
/**
 * Lab agents hold their check-in this long (real agents: 25 s), so a policy change that follows a
 * report — an update that became needed after a reboot — reaches them within seconds.
 */
export const LAB_CHECKIN_WAIT_SECONDS = 5;
/** A lab agent process looks this often whether the server that started it is still there. */
const PARENT_CHECK_MS = 2_000;
/** A child agent gets this long to stop after SIGTERM before it is killed. */
const CHILD_STOP_MS = 5_000;

export interface LabAgents {
  readonly mode: LabAgentMode;
  readonly hosts: readonly string[];
  /** The in-process fleets (empty in process mode). */
  readonly fleets: readonly LabFleet[];
  close(): Promise<void>;
}

export interface StartLabAgentsOptions {
  readonly lab: Lab;
  readonly mode: LabAgentMode;
  /** The server's URL as agents reach it (loopback). */
  readonly serverUrl: string;
  /** Enrollment token per ring. */
  readonly tokens: Readonly<Record<'pilot' | 'broad', string>>;
  /** argv that starts this CLI (process mode), e.g. [node, bin/patchline.js]. */
  readonly cliArgv: readonly string[];
  readonly log: (message: string) => void;
}

export async function startLabAgents(options: StartLabAgentsOptions): Promise<LabAgents> {
  const { lab } = options;
  const hosts = lab.scenario.hosts.map((h) => h.name);
  if (options.mode === 'in-process') {
    const fleets: LabFleet[] = [];
    try {
      for (const ring of ['pilot', 'broad'] as const) {
        const names = hosts.filter((h) => lab.ringOf(h) === ring);
        if (names.length === 0) continue;
        fleets.push(
          await startLabFleet({
            scenario: lab.scenario,
            dir: lab.dir,
            serverUrl: options.serverUrl,
            enrollToken: options.tokens[ring],
            hosts: names,
            upstreamUrl: lab.payloadUpstreamUrl,
            payloads: lab.payloads,
            labRootPem: lab.rootPem,
            log: options.log,
            checkinWaitSeconds: LAB_CHECKIN_WAIT_SECONDS,
          }),
        );
      }
    } catch (error) {
      await Promise.all(fleets.map((f) => f.close()));
      throw error;
    }
    return {
      mode: 'in-process',
      hosts,
      fleets,
      close: async () => void (await Promise.all(fleets.map((f) => f.close()))),
    };
  }

  const children = new Map<string, ChildProcess>();
  let closing = false;
  for (const name of hosts) {
    const logDir = join(lab.dir, 'hosts', name);
    mkdirSync(logDir, { recursive: true });
    const fd = openSync(join(logDir, 'agent-process.log'), 'a');
    const [command, ...args] = options.cliArgv;
    const child = spawn(
      command!,
      [
        ...args,
        'server',
        'lab-agent',
        '--scenario',
        lab.scenarioPath,
        '--dir',
        lab.dir,
        '--host',
        name,
        '--server',
        options.serverUrl,
        '--token',
        options.tokens[lab.ringOf(name)],
        '--upstream',
        lab.payloadUpstreamUrl,
        '--root',
        lab.rootPemFile,
        '--time-scale',
        String(lab.scenario.timeScale),
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    child.once('exit', (code, signal) => {
      if (!closing)
        options.log(
          `lab agent ${name} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); see ${join(logDir, 'agent-process.log')}`,
        );
    });
    children.set(name, child);
  }
  return {
    mode: 'process',
    hosts,
    fleets: [],
    async close() {
      closing = true;
      await Promise.all(
        [...children.values()].map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_MS);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}

/** `patchline server lab-agent …` (hidden): one lab host's agent, started by `server --lab --lab-agents process`. */
export function registerLabAgentCommand(server: Command): void {
  server
    .command('lab-agent', { hidden: true })
    .description("one lab host's agent process (started by `server --lab … --lab-agents process`)")
    .requiredOption('--scenario <file>')
    .requiredOption('--dir <dir>')
    .requiredOption('--host <name>')
    .requiredOption('--server <url>')
    .requiredOption('--token <token>')
    .requiredOption('--upstream <url>')
    .requiredOption('--root <pem>')
    .option('--time-scale <n>')
    .action(
      async (o: {
        scenario: string;
        dir: string;
        host: string;
        server: string;
        token: string;
        upstream: string;
        root: string;
        timeScale?: string;
      }) => {
        const loaded = await loadScenario(o.scenario);
        const timeScale = o.timeScale === undefined ? loaded.timeScale : Number(o.timeScale);
        if (!(timeScale > 0)) throw usageError('USAGE_VALUE', `--time-scale ${o.timeScale}: a positive number.`);
        const scenario = { ...loaded, timeScale };
        const fleet = await startLabFleet({
          scenario,
          dir: o.dir,
          serverUrl: o.server,
          enrollToken: o.token,
          hosts: [o.host],
          upstreamUrl: o.upstream,
          payloads: createPayloadStore(scenario),
          labRootPem: await readFile(o.root, 'utf8'),
          log: (m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`),
          checkinWaitSeconds: LAB_CHECKIN_WAIT_SECONDS,
        });
        const parent = process.ppid;
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
          // A server killed outright (SIGKILL) cannot stop its lab agents: they notice and stop themselves.
          setInterval(() => {
            try {
              process.kill(parent, 0);
            } catch {
              // ESRCH: the server is gone (process.ppid is read once at start, so it cannot tell).
              resolve();
            }
          }, PARENT_CHECK_MS).unref();
        });
        await fleet.close();
        process.exit(0);
      },
    );
}
