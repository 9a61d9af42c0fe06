/**
 * The lab transport passes the transport contract (src/transports/contract.case.ts) against a real
 * lab daemon on 127.0.0.1 with in-process agents — the real agent code and the simulated provider.
 * The daemon runs on real time (its scenario's timeScale shrinks durations), so `eventually` polls
 * it, bounded (timeScale 0.05: a 2 s reboot takes 100 ms).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLabDaemon } from '../src/lab/daemon.ts';
import { LAB_CONTRACT_SCENARIO, pollingEventually, runTransportContract } from '../src/transports/contract.case.ts';
import { createLabTransport } from '../src/transports/lab.ts';

/** Real time the contract may wait for the daemon (agents, reboots). */
const EVENTUALLY_MS = 30_000;
/** Between two looks at the daemon while waiting: it answers in well under this. */
const POLL_MS = 50;

const poll = pollingEventually(EVENTUALLY_MS, POLL_MS);

runTransportContract('lab', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-lab-contract-'));
  const scenarioPath = join(dir, 'scenario.yaml');
  await writeFile(scenarioPath, LAB_CONTRACT_SCENARIO);
  const daemon = await startLabDaemon({ scenarioPath, dir: join(dir, 'lab'), mode: 'inprocess', idleShutdownMs: 0 });
  const transport = createLabTransport({
    dir: daemon.dir,
    daemon: { connect: async () => ({ url: daemon.url, token: daemon.token }), close: async () => undefined },
  });
  // lost01 goes down for good: its first reboot never completes.
  await transport.reboot('lost01');
  await poll('lost01 to go down', async () => !(await transport.probe('lost01', AbortSignal.timeout(5_000))).reachable);
  return {
    transport,
    up: 'web01',
    down: 'lost01',
    refusing: 'locked01',
    eventually: poll,
    close: async () => {
      await transport.close();
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
