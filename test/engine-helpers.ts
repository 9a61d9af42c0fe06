/**
 * Shared set-up for engine tests: a temp state file, a ManualClock that runs simulated time on its
 * own (reboots, installs, probe backoff and deadlines cost no real time and happen in the same
 * order under any load), default run options, a log collector with event-driven waits, and the
 * servicing-stack → cumulative update → .NET chain most scenarios start from.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../src/store/db.ts';
import { systemClock, type Clock } from '../src/engine/clock.ts';
import { ManualClock } from '../src/engine/manual-clock.ts';
import type { EngineDeps, EngineTiming, RunLogEvent, RunOptions } from '../src/engine/types.ts';
import type { FakeUpdateSpec, FakeFleet } from './engine-fake-transport.ts';

/** Small durations: on the ManualClock they cost nothing; on real time (kill -9) well under a second per cycle. */
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

export const SSU: FakeUpdateSpec = {
  id: '00000000-0000-0000-0000-000000000001',
  kb: '5001001',
  title: 'Servicing Stack Update',
};
export const CU: FakeUpdateSpec = {
  id: '00000000-0000-0000-0000-000000000002',
  kb: '5002002',
  title: 'Cumulative Update',
  requires: [SSU.id],
};
export const NET: FakeUpdateSpec = {
  id: '00000000-0000-0000-0000-000000000003',
  kb: '5003003',
  title: '.NET Framework Update',
  requires: [CU.id],
};
export const DEFENDER: FakeUpdateSpec = {
  id: '00000000-0000-0000-0000-000000000004',
  kb: '5004004',
  title: 'Defender Platform',
  rebootBehavior: 'never',
};
export const CHAIN: readonly FakeUpdateSpec[] = [SSU, CU, NET];

export function runOptions(targets: readonly string[], over: Partial<RunOptions> = {}): RunOptions {
  return {
    targets,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    maxCycles: 5,
    retries: 1,
    rebootTimeoutMs: 2_000,
    deadlineAt: null,
    parallel: 10,
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 5,
    logHandoverTimeoutSeconds: 0.5,
    ...over,
  };
}

export interface TestEnv {
  readonly store: Store;
  readonly file: string;
  readonly events: RunLogEvent[];
  /** The run's clock: a self-running ManualClock, or real time with `testEnv({ realTime: true })`. */
  readonly clock: Clock;
  deps(fleet: FakeFleet, over?: Partial<EngineDeps>): EngineDeps;
  /** Resolves with the first logged event matching `pred` (at once if already logged). */
  when(pred: (e: RunLogEvent) => boolean): Promise<RunLogEvent>;
  cleanup(): Promise<void>;
}

export async function testEnv(options: { readonly realTime?: boolean } = {}): Promise<TestEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-engine-'));
  const file = join(dir, 'state.sqlite');
  const store = await openStore(file);
  const events: RunLogEvent[] = [];
  const fleets: FakeFleet[] = [];
  const watchers: { pred: (e: RunLogEvent) => boolean; resolve: (e: RunLogEvent) => void }[] = [];
  const manual = options.realTime ? null : new ManualClock();
  const clock: Clock = manual ?? systemClock;
  // Simulated time stands still while an agent's POST is on the wire (real loopback I/O).
  const auto = manual?.autoAdvance({ busy: () => fleets.some((f) => f.inFlight > 0) });
  const log = (e: RunLogEvent) => {
    events.push(e);
    for (const w of [...watchers]) {
      if (!w.pred(e)) continue;
      watchers.splice(watchers.indexOf(w), 1);
      w.resolve(e);
    }
  };
  return {
    store,
    file,
    events,
    clock,
    deps: (fleet, over = {}) => {
      fleets.push(fleet);
      fleet.clock = clock;
      return { store, transport: fleet, clock, log, timing: FAST_TIMING, ...over };
    },
    when: (pred) => {
      const hit = events.find(pred);
      return hit ? Promise.resolve(hit) : new Promise((resolve) => watchers.push({ pred, resolve }));
    },
    cleanup: async () => {
      for (const f of fleets) await f.shutdown();
      await auto?.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const never = new AbortController().signal;
