/** A shared builder for the agent service's tests: its state in a directory, a host that never reboots. */
import type { Clock } from '../clock.ts';
import type { HostIo } from './host-work.ts';
import type { AgentHttp } from './http.ts';
import { AgentService } from './service.ts';
import { AgentState } from './state.ts';

/**
 * An AgentService named web01 with its state under `stateDir` (initialised), fixed randomness (0.5:
 * no jitter) and a host whose reboot fails the test; `openProvider` says what a scan meets.
 */
export async function serviceForTest(options: {
  readonly stateDir: string;
  readonly http: AgentHttp;
  readonly clock: Clock;
  readonly openProvider: HostIo['openProvider'];
  readonly log?: (message: string) => void;
}): Promise<AgentService> {
  const state = new AgentState(options.stateDir);
  await state.init();
  return new AgentService({
    state,
    http: options.http,
    host: {
      openProvider: options.openProvider,
      bootId: async () => null,
      reboot: async () => {
        throw new Error('a test host does not reboot');
      },
      verifyCab: async () => undefined,
    },
    clock: options.clock,
    random: () => 0.5,
    agentVersion: 'test',
    hostName: 'web01',
    log: options.log ?? (() => undefined),
  });
}
