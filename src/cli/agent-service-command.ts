/**
 * `patchline agent enroll --server URL --token ET…` and `patchline agent service`: the enrolled
 * agent of the fleet server. Enroll once (it writes the host's credential and the server's pinned
 * certificate fingerprint to the state directory), then run the service for good — on Windows as a
 * SYSTEM start-up task (docs/decisions.md "Agent service on Windows"; this has NOT run on Windows).
 */
import { hostname, uptime } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { systemClock } from '../agent/clock.ts';
import { resolveProviderCommand } from '../agent/provider-command.ts';
import { executeReboot, planReboot } from '../agent/reboot.ts';
import { enrollAgent } from '../agent/service/enroll.ts';
import { AgentHttp } from '../agent/service/http.ts';
import { AgentService } from '../agent/service/service.ts';
import { AgentState } from '../agent/service/state.ts';
import { verifyCabSignature } from '../catalog/authenticode/verify.ts';
import { defaultRoots } from '../catalog/roots/default-roots.ts';
import { usageError } from '../domain/errors.ts';
import { spawnProvider } from '../wua/client.ts';

/** Where the agent keeps its state unless told otherwise. */
export function defaultAgentStateDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (env.PATCHLINE_AGENT_DIR) return env.PATCHLINE_AGENT_DIR;
  if (platform === 'win32') return join(env.ProgramData ?? 'C:\\ProgramData', 'Patchline', 'agent');
  return '/var/lib/patchline-agent';
}

const SERVICE_HELP = `
Keeps one outbound connection to the server (a long-poll check-in: actions arrive within
seconds), scans on the ring's schedule (offline against the server's catalog cab, fetched only
when it changed and verified by its signature), reports what changed, and installs what the
server's rules allow inside the ring's maintenance windows; operator actions run at once.
Reports and progress are kept on disk while the server is unreachable and sent when it is back.

On Windows, run it as SYSTEM at start-up (not tested on Windows yet):
  schtasks /Create /TN Patchline\\Agent /SC ONSTART /RU SYSTEM /RL HIGHEST /TR "\\"C:\\Patchline\\node.exe\\" \\"C:\\Patchline\\patchline.js\\" agent service"

Environment: PATCHLINE_AGENT_DIR (state directory), PATCHLINE_PROVIDER_CMD (WUA provider argv).`;

export function registerAgentServiceCommands(agent: Command): void {
  agent
    .command('enroll')
    .description('Enroll this host with a Patchline server (once); then run `patchline agent service`.')
    .requiredOption('--server <url>', 'the server, e.g. https://patch01:8443')
    .requiredOption('--token <token>', 'an enrollment token (ET1.…) from `patchline server enroll-token create`')
    .option('--name <host>', "the host name to enroll as (default: this computer's name)")
    .option(
      '--state-dir <dir>',
      'where the agent keeps its credential and queue (default: %ProgramData%\\Patchline\\agent)',
    )
    .action(async (options: { server: string; token: string; name?: string; stateDir?: string }) => {
      let url: URL;
      try {
        url = new URL(options.server);
      } catch (error) {
        throw usageError('USAGE_VALUE', `--server ${options.server} is not a URL (https://host:8443)`, {
          cause: error,
        });
      }
      const state = new AgentState(options.stateDir ?? defaultAgentStateDir(process.env, process.platform));
      const enrollment = await enrollAgent({
        serverUrl: url.origin,
        token: options.token,
        hostName: options.name ?? hostname().split('.')[0]!,
        agentVersion: agentVersion(agent),
        state,
        now: () => new Date(),
        signal: AbortSignal.timeout(60_000),
      });
      process.stdout.write(
        `Enrolled ${enrollment.hostName} (ring ${enrollment.ring}) with ${enrollment.serverUrl}; state in ${state.dir}.\nNow run: patchline agent service\n`,
      );
    });

  agent
    .command('service')
    .description('Run the enrolled agent: check in, scan, report, install what is allowed (runs until stopped).')
    .option('--state-dir <dir>', 'the directory `agent enroll` wrote')
    .option(
      '--trust <pem...>',
      "extra trusted root certificates for the catalog cab (a lab catalog); Microsoft's are always trusted",
    )
    .addHelpText('after', SERVICE_HELP)
    .action(async (options: { stateDir?: string; trust?: string[] }) => {
      const state = new AgentState(options.stateDir ?? defaultAgentStateDir(process.env, process.platform));
      const enrollment = await state.requireEnrollment();
      const roots = [...defaultRoots(), ...(await Promise.all((options.trust ?? []).map((f) => readFile(f, 'utf8'))))];
      const http = new AgentHttp({
        serverUrl: enrollment.serverUrl,
        fingerprint: enrollment.fingerprint,
        credential: enrollment.credential,
      });
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals): void => {
        process.stderr.write(`patchline agent: ${signal}: stopping (queued reports stay on disk)\n`);
        controller.abort();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const service = new AgentService({
        state,
        http,
        clock: systemClock,
        random: Math.random,
        agentVersion: agentVersion(agent),
        hostName: enrollment.hostName,
        log: (m) => process.stderr.write(`patchline agent: ${m}\n`),
        host: {
          openProvider: () => spawnProvider(resolveProviderCommand(process.env, process.platform)),
          // The boot time to the second: it changes exactly when the host rebooted.
          bootId: async () => new Date(Math.round((Date.now() - uptime() * 1000) / 10_000) * 10_000).toISOString(),
          reboot: async () => executeReboot(planReboot(process.env, process.platform)),
          verifyCab: async (path) => {
            await verifyCabSignature(path, { roots });
          },
        },
      });
      try {
        await service.run(controller.signal);
      } finally {
        await http.close();
      }
    });
}

function agentVersion(agent: Command): string {
  return agent.parent?.version() ?? 'unknown';
}
