/**
 * `patchline agent cycle --request FILE`: what the connector starts on a target, through its task
 * scheduler, as SYSTEM. Reads the CycleRequest, runs one cycle against the WUA provider, streams
 * the events, hands the log over, and reboots when asked. Exit 0 whenever the cycle ran (its
 * outcome is in the log), 64 for a bad request file, 70 for an internal error, 1 when the
 * reboot or the log hand-over failed.
 */
import type { Command } from 'commander';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPackedClient } from '../agent/manifest.ts';
import { runAgentCycle } from '../agent/agent-run.ts';
import { systemClock } from '../agent/clock.ts';
import { resolveProviderCommand } from '../agent/provider-command.ts';
import { readCycleRequest } from '../agent/request-file.ts';
import { spawnProvider } from '../wua/client.ts';
import { registerAgentServiceCommands } from './agent-service-command.ts';

/** Exit code after a second Ctrl-C / SIGTERM while the first one is still being honoured. */
const EXIT_INTERRUPTED = 130;

const CYCLE_HELP = `
The connector starts this on the target (through its task scheduler, as SYSTEM); you rarely run
it by hand. It runs ONE patch cycle through the Windows Update provider:
  preflight (pending reboot? installer busy?) → scan → download → install → rescan, until
  nothing matching the filters is left or a reboot is needed.

Output: one JSON event per line on stdout (cycle-started … cycle-finished). The same events go
to the request's HTTP callback as they happen; at the end the whole log is served on the
request's pipe path (a named pipe on Windows, a Unix socket elsewhere) until someone reads it or
logHandoverTimeoutSeconds pass, then it is written to <log dir>/<runId>-<host>-<cycle>.jsonl.
Only then does the agent reboot the host, if the cycle's willReboot is true.

Environment:
  PATCHLINE_PROVIDER_CMD       JSON argv of the WUA provider (default on Windows: powershell.exe wua.ps1)
  PATCHLINE_LOG_DIR            where the log file goes (default: %ProgramData%\\Patchline\\logs, or the temp dir)
  PATCHLINE_LAB_CONTROL_URL,
  PATCHLINE_LAB_CONTROL_TOKEN  reboot a lab host through its daemon instead of shutdown.exe

SIGTERM or Ctrl-C aborts the running Windows Update operation; the cycle ends "aborted".
Exit codes: 0 the cycle ran (whatever its outcome), 1 the log hand-over or the reboot failed,
64 bad request file, 70 internal error.`;

/** Registers `patchline agent …`. */
export function registerAgentCommand(program: Command): void {
  const agent = program
    .command('agent')
    .description('What runs on a target: one patch cycle (started by the connector), or the enrolled agent service.');
  registerAgentServiceCommands(agent);
  agent
    .command('cycle')
    .description('Run one patch cycle on this host, as described by a cycle request file.')
    .requiredOption(
      '--request <file>',
      'the CycleRequest JSON the connector wrote for this cycle (mode, filters, reboot policy, callback, pipe)',
    )
    .addHelpText('after', CYCLE_HELP)
    .action(async (options: { request: string }) => {
      // A packed client (patchline client pack) checks its folder against its manifest first: a
      // tampered or half-copied file is refused (CLIENT_TAMPERED) before anything runs.
      const clientDir = dirname(fileURLToPath(import.meta.url));
      const packed = await checkPackedClient(clientDir, process.env.PATCHLINE_CLIENT_PACK === '1');
      const request = await readCycleRequest(options.request);
      const controller = new AbortController();
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals++;
        if (signals > 1) process.exit(EXIT_INTERRUPTED);
        process.stderr.write(
          `patchline agent: ${signal}: aborting the running Windows Update operation (again to quit at once)\n`,
        );
        controller.abort(new Error(`received ${signal}`));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        const result = await runAgentCycle(request, {
          openProvider: () =>
            spawnProvider(
              resolveProviderCommand(process.env, process.platform, packed ? join(clientDir, 'wua.ps1') : undefined),
            ),
          clock: systemClock,
          signal: controller.signal,
          stdout: process.stdout,
          report: (message) => process.stderr.write(`patchline agent: ${message}\n`),
          env: process.env,
          platform: process.platform,
          agentVersion: program.version() ?? 'unknown',
        });
        // A bug in the agent: the log (with outcome error) is out; now fail loudly (exit 70).
        if (result.summary.internalError !== undefined) throw result.summary.internalError;
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });
}
