/**
 * The process launcher: starts `node <bundle> agent cycle --request FILE` for a virtual host, the
 * way the Windows Task Scheduler starts the client as SYSTEM. The agent in turn starts the lab
 * provider named by PATCHLINE_PROVIDER_CMD. Each task runs in its own process group, so a reboot
 * kills the agent and its provider together, like a real reboot kills everything on the host.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { CliCommand } from './bundle.ts';
import { LaunchFailedError, type LaunchSpec, type LaunchedAgent, type Launcher } from './launcher.ts';

/** ERROR_FILE_NOT_FOUND as an HRESULT: what the scheduler reports when the program is missing. */
const HRESULT_FILE_NOT_FOUND = '0x80070002';
/** SIGKILLed processes are gone within milliseconds; orphans wait for init to reap them. */
const GROUP_GONE_TIMEOUT_MS = 3_000;
const GROUP_POLL_MS = 10;

export interface ProcessLauncherOptions {
  /** Absolute path of the scenario file the provider loads. */
  readonly scenarioPath: string;
  /** The fake upstream the provider downloads payloads from. */
  readonly upstreamUrl: string;
  /** The CLI to start (the bundle, or tsx); resolved once, at the first launch. */
  readonly cli: () => Promise<CliCommand>;
  /** Environment every agent inherits (defaults to this process's). */
  readonly baseEnv?: NodeJS.ProcessEnv;
}

/** Environment of one agent: how it finds its provider, its host's reboot control and its log dir. */
export function agentEnv(cli: CliCommand, spec: LaunchSpec, options: ProcessLauncherOptions): NodeJS.ProcessEnv {
  const providerArgv = [
    ...cli.argv,
    'lab',
    'provider',
    '--scenario',
    options.scenarioPath,
    '--host',
    spec.host.name,
    '--dir',
    spec.host.hostDir,
    '--upstream',
    options.upstreamUrl,
  ];
  return {
    ...(options.baseEnv ?? process.env),
    PATCHLINE_PROVIDER_CMD: JSON.stringify(providerArgv),
    PATCHLINE_LAB_CONTROL_URL: spec.host.controlUrl,
    PATCHLINE_LAB_CONTROL_TOKEN: spec.host.controlToken,
    PATCHLINE_LOG_DIR: join(spec.host.hostDir, 'logs'),
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // A negative pid addresses the whole process group (the agent and its provider).
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the group is already gone, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Is any process of the group left (a killed provider may take a moment to be reaped)? */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills the group and waits, bounded, until no process of it is left. */
async function killGroup(pid: number, ended: Promise<void>): Promise<void> {
  signalGroup(pid, 'SIGKILL');
  await ended;
  const deadline = Date.now() + GROUP_GONE_TIMEOUT_MS;
  while (groupAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
  }
}

function signalOne(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export function createProcessLauncher(options: ProcessLauncherOptions): Launcher {
  let cliPromise: Promise<CliCommand> | undefined;
  return {
    mode: 'process',
    async start(spec: LaunchSpec): Promise<LaunchedAgent> {
      cliPromise ??= options.cli();
      const cli = await cliPromise;
      const [command, ...prefix] = cli.argv;
      if (command === undefined) throw new LaunchFailedError(HRESULT_FILE_NOT_FOUND, 'no Patchline command to start');
      const logsDir = join(spec.host.hostDir, 'logs');
      mkdirSync(logsDir, { recursive: true });
      // The agent's stdout (JSON lines) and stderr go to a per-task file, like a task's output
      // redirected on Windows; the connector reads events from the callback or the pipe.
      const outFd = openSync(join(logsDir, `${spec.taskId}.out`), 'a');
      try {
        const child = spawn(command, [...prefix, 'agent', 'cycle', '--request', spec.requestPath], {
          cwd: spec.host.hostDir,
          env: agentEnv(cli, spec, options),
          stdio: ['ignore', outFd, outFd],
          detached: true,
        });
        const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
        await new Promise<void>((resolve, reject) => {
          child.once('spawn', resolve);
          child.once('error', (error) =>
            reject(
              new LaunchFailedError(HRESULT_FILE_NOT_FOUND, `could not start ${command}: ${error.message}`, {
                cause: error,
              }),
            ),
          );
        });
        const pid = child.pid;
        if (pid === undefined)
          throw new LaunchFailedError(HRESULT_FILE_NOT_FOUND, `could not start ${command}: no process id`);
        // The daemon must not wait for its hosts' agents when it exits.
        child.unref();
        return {
          pid,
          ended,
          stop: () => signalOne(pid, 'SIGTERM'),
          kill: () => killGroup(pid, ended),
        };
      } finally {
        closeSync(outFd);
      }
    },
  };
}
