/**
 * Shared set-up for engine tests: a temp state file, fast timings, default run options, a log
 * collector, and the servicing-stack → cumulative update → .NET chain most scenarios start from.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../src/store/db.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { EngineDeps, EngineTiming, RunLogEvent, RunOptions } from '../src/engine/types.ts';
import type { FakeUpdateSpec, FakeFleet } from './engine-fake-transport.ts';

/** Small simulated durations: a test run takes well under a second per cycle. */
export const FAST_TIMING: EngineTiming = {
  probeInitialDelayMs: 10,
  probeMaxDelayMs: 40,
  agentPollMs: 20,
  streamSilenceMs: 150,
  launchTimeoutMs: 5_000,
  ackWaitMs: 2_000,
  stopDrainMs: 2_000,
  agentRebootGraceMs: 200,
};

export const SSU: FakeUpdateSpec = { id: '00000000-0000-0000-0000-000000000001', kb: '5001001', title: 'Servicing Stack Update' };
export const CU: FakeUpdateSpec = { id: '00000000-0000-0000-0000-000000000002', kb: '5002002', title: 'Cumulative Update', requires: [SSU.id] };
export const NET: FakeUpdateSpec = { id: '00000000-0000-0000-0000-000000000003', kb: '5003003', title: '.NET Framework Update', requires: [CU.id] };
export const DEFENDER: FakeUpdateSpec = { id: '00000000-0000-0000-0000-000000000004', kb: '5004004', title: 'Defender Platform', rebootBehavior: 'never' };
export const CHAIN: readonly FakeUpdateSpec[] = [SSU, CU, NET];

export function runOptions(targets: readonly string[], over: Partial<RunOptions> = {}): RunOptions {
  return {
    targets, mode: 'install', reboot: 'if-required', filters: {}, maxCycles: 5, retries: 1, rebootTimeoutMs: 2_000,
    deadlineAt: null, parallel: 10, serverSelection: 'default', installerBusyTimeoutSeconds: 5, logHandoverTimeoutSeconds: 0.5,
    ...over,
  };
}

export interface TestEnv {
  readonly store: Store;
  readonly file: string;
  readonly events: RunLogEvent[];
  deps(fleet: FakeFleet, over?: Partial<EngineDeps>): EngineDeps;
  cleanup(): Promise<void>;
}

export async function testEnv(): Promise<TestEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-engine-'));
  const file = join(dir, 'state.sqlite');
  const store = await openStore(file);
  const events: RunLogEvent[] = [];
  const fleets: FakeFleet[] = [];
  return {
    store, file, events,
    deps: (fleet, over = {}) => {
      fleets.push(fleet);
      return { store, transport: fleet, clock: systemClock, log: (e) => events.push(e), timing: FAST_TIMING, ...over };
    },
    cleanup: async () => {
      for (const f of fleets) await f.shutdown();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const never = new AbortController().signal;
