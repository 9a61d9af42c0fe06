/**
 * The engine tests' transport double passes the transport contract (src/transports/contract.case.ts),
 * on a ManualClock: what the engine tests learn from it holds for the real transports too.
 */
import { ManualClock } from '../src/engine/manual-clock.ts';
import { runTransportContract } from '../src/transports/contract.case.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { DEFENDER } from './engine-helpers.ts';

/** Simulated time allowed for anything the contract waits for. */
const EVENTUALLY_MS = 10 * 60_000;
const STEP_MS = 100;

runTransportContract('test double (FakeFleet)', async () => {
  const clock = new ManualClock();
  const fleet = new FakeFleet([
    { name: 'web01', updates: [DEFENDER] },
    { name: 'lost01', updates: [] },
    { name: 'locked01', updates: [], refuseLaunch: true },
  ]);
  fleet.clock = clock;
  fleet.host('lost01').reachable = false;
  return {
    transport: fleet,
    up: 'web01',
    down: 'lost01',
    refusing: 'locked01',
    eventually: async (what, check) => {
      for (let waited = 0; waited <= EVENTUALLY_MS; waited += STEP_MS) {
        if (await check()) return;
        await clock.advance(STEP_MS);
      }
      throw new Error(`${what}: not within ${EVENTUALLY_MS} ms of simulated time`);
    },
    close: () => fleet.shutdown(),
  };
});
