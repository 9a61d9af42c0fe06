/**
 * The in-process launcher (large fleets: 500 hosts on two cores): runs the agent's own cycle code
 * (`runCycle`, its HTTP callback sink, its log hand-over and its lab reboot) inside the daemon's
 * process, talking to the lab's `serveProvider` over in-memory streams instead of a child process.
 * Each task has an AbortController pair: `stop` asks the agent to abort (it reports `aborted`),
 * `kill` (a reboot) tears the agent and its provider down at once.
 */
import { join } from 'node:path';
import { runAgentCycle } from '../agent/agent-run.ts';
import { systemClock } from '../agent/clock.ts';
import { executeReboot } from '../agent/reboot.ts';
import { inMemoryChannel } from '../wua/client.ts';
import type { LaunchSpec, LaunchedAgent, Launcher } from './launcher.ts';
import type { PayloadStore } from './payloads.ts';
import type { Scenario } from './scenario.ts';
import { serveProvider } from './simulated-provider.ts';

/** Reported in cycle-started by in-process agents (the CLI reports its program version). */
const IN_PROCESS_AGENT_VERSION = '0.1.0-inprocess';

export interface InProcessLauncherOptions {
  readonly scenario: Scenario;
  readonly upstreamUrl: string;
  /** One payload store shared by every host (digests are computed once). */
  readonly payloads?: PayloadStore;
  /** Diagnostics of the agents (HTTP retries, hand-over problems). */
  readonly log?: (message: string) => void;
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export function createInProcessLauncher(options: InProcessLauncherOptions): Launcher {
  const log = options.log ?? (() => undefined);
  /** Agents whose code is still running, killed or not (drain waits for these). */
  const running = new Set<Promise<void>>();

  /** Exactly what `patchline agent cycle` does (runAgentCycle), minus the process. */
  async function runAgent(spec: LaunchSpec, stop: AbortSignal, kill: AbortSignal): Promise<void> {
    const { request, host } = spec;
    await runAgentCycle(request, {
      openProvider: () =>
        inMemoryChannel((input, output) =>
          serveProvider(input, output, {
            scenario: options.scenario,
            hostName: host.name,
            hostDir: host.hostDir,
            upstreamUrl: options.upstreamUrl,
            signal: kill,
            ...(options.payloads ? { payloads: options.payloads } : {}),
          }),
        ),
      clock: systemClock,
      signal: AbortSignal.any([stop, kill]),
      kill,
      report: (message) => log(`${host.name} ${spec.taskId}: ${message}`),
      // The same environment the process launcher gives a real agent.
      env: {
        PATCHLINE_LAB_CONTROL_URL: host.controlUrl,
        PATCHLINE_LAB_CONTROL_TOKEN: host.controlToken,
        PATCHLINE_LOG_DIR: join(host.hostDir, 'logs'),
      },
      platform: process.platform,
      agentVersion: IN_PROCESS_AGENT_VERSION,
      // A rebooting host's network is gone: whatever the killed agent still sends is lost, as
      // it would be for a killed process.
      fetch: (input, init) => {
        if (kill.aborted) return Promise.reject(new Error('host rebooting'));
        return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, kill]) : kill });
      },
      // A killed agent (its host is rebooting) may still be finishing its log hand-over in the
      // background: it must not reboot the host once more when that ends.
      reboot: async (plan) => {
        if (!kill.aborted) await executeReboot(plan);
      },
    });
  }

  return {
    mode: 'inprocess',
    async start(spec: LaunchSpec): Promise<LaunchedAgent> {
      const stop = new AbortController();
      const kill = new AbortController();
      const run = runAgent(spec, stop.signal, kill.signal).catch((error: unknown) => {
        // A real agent process would print this to its stderr and exit non-zero.
        log(`${spec.host.name} ${spec.taskId}: agent failed: ${(error as Error).stack ?? String(error)}`);
      });
      running.add(run);
      void run.then(() => running.delete(run));
      return {
        // The agent runs in this process; cycle-started reports the same pid.
        pid: process.pid,
        // A killed agent is gone at once, whatever its cycle was still waiting for.
        ended: Promise.race([run, aborted(kill.signal)]),
        stop: () => stop.abort(new Error('stopped by the connector')),
        kill: async () => {
          kill.abort(new Error('host rebooting'));
        },
      };
    },
    async drain(timeoutMs: number): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const all = Promise.all([...running]).then(() => 'drained' as const);
      const outcome = await Promise.race([all, deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout')
        log(`${running.size} in-process agent(s) still running ${timeoutMs} ms after they were stopped`);
    },
  };
}
