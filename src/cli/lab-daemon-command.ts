/**
 * `patchline lab daemon`: runs the lab host daemon in the foreground (virtual hosts, their task
 * scheduler and boots, the fake upstream). `patchline run --lab` starts it detached on its own;
 * run it by hand to watch a lab or keep one up between runs. `--stop` stops the one serving DIR.
 */
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { DEFAULT_IDLE_SHUTDOWN_MS, startLabDaemon } from '../lab/daemon.ts';
import { stopLabDaemon } from '../lab/daemon-main.ts';

interface DaemonCommandOptions {
  readonly scenario?: string;
  readonly dir: string;
  readonly inprocess?: boolean;
  readonly idleSeconds?: string;
  readonly port?: string;
  readonly stop?: boolean;
}

function positiveInteger(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw usageError('USAGE', `${option} must be a whole number ≥ 0, got "${text}"`);
  return n;
}

/** Adds `daemon` to the `patchline lab` command. */
export function registerLabDaemonCommand(lab: Command): void {
  lab
    .command('daemon')
    .description(
      'Run the lab host daemon in the foreground: every virtual host of a scenario (task scheduler, boot id, reboots, faults) and the fake update upstream, on 127.0.0.1. The URL and bearer token go to DIR/daemon.json (mode 0600).',
    )
    .option('--scenario <file>', 'lab scenario file (YAML or JSON), e.g. examples/lab/patch-night.yaml')
    .requiredOption('--dir <dir>', "lab directory: host state (DIR/hosts/<name>), daemon.json, the agents' bundle")
    .option('--inprocess', 'run agents and providers inside the daemon instead of as processes (large fleets)')
    .option(
      '--idle-seconds <n>',
      `stop after this many seconds without host API calls and with no task running; 0 = never (default ${DEFAULT_IDLE_SHUTDOWN_MS / 1000})`,
    )
    .option('--port <n>', 'listen on this port (default: the previous one for DIR if free, else a random one)')
    .option('--stop', 'stop the daemon serving --dir and exit')
    .action(async (opts: DaemonCommandOptions) => {
      if (opts.stop) {
        const stopped = await stopLabDaemon(opts.dir);
        process.stdout.write(
          stopped ? `stopped the lab daemon serving ${opts.dir}\n` : `no lab daemon serves ${opts.dir}\n`,
        );
        return;
      }
      if (opts.scenario === undefined) throw usageError('USAGE', 'lab daemon needs --scenario FILE (or --stop)');
      const log = (message: string) => process.stderr.write(`${new Date().toISOString()} lab-daemon: ${message}\n`);
      const daemon = await startLabDaemon({
        scenarioPath: opts.scenario,
        dir: opts.dir,
        mode: opts.inprocess ? 'inprocess' : 'process',
        idleShutdownMs: positiveInteger(opts.idleSeconds, '--idle-seconds', DEFAULT_IDLE_SHUTDOWN_MS / 1000) * 1000,
        ...(opts.port === undefined ? {} : { port: positiveInteger(opts.port, '--port', 0) }),
        log,
      });
      process.stdout.write(`${daemon.url}\n`);
      const onSignal = () => void daemon.close();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      await daemon.closed;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
}
