/**
 * The SSH transport passes the transport contract (src/transports/contract.case.ts) against the
 * SSH lab: real sshd per host on loopback, the lab's model of Windows behind it. lost01 goes down
 * for good (its sshd with it), locked01's task scheduler refuses every launch with 0x80070005.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSshLabTransport } from '../src/lab/ssh/lab-transport.ts';
import { sshdUnavailableReason } from '../src/lab/ssh/sshd.ts';
import { LAB_CONTRACT_SCENARIO, pollingEventually, runTransportContract } from '../src/transports/contract.case.ts';

const EVENTUALLY_MS = 60_000;
const POLL_MS = 100;

const poll = pollingEventually(EVENTUALLY_MS, POLL_MS);

const unavailable = sshdUnavailableReason();
if (unavailable !== null) {
  describe('transport contract: ssh', () => {
    it('needs the SSH lab', (t) => t.skip(unavailable));
  });
} else {
  runTransportContract('ssh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-ssh-contract-'));
    const scenarioPath = join(dir, 'scenario.yaml');
    await writeFile(scenarioPath, LAB_CONTRACT_SCENARIO);
    const transport = await openSshLabTransport({ scenarioPath, dir: join(dir, 'lab'), note: () => undefined });
    await transport.reboot('lost01');
    await poll(
      'lost01 to go down',
      async () => !(await transport.probe('lost01', AbortSignal.timeout(10_000))).reachable,
    );
    return {
      transport,
      up: 'web01',
      down: 'lost01',
      refusing: 'locked01',
      eventually: poll,
      close: async () => {
        await transport.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}
