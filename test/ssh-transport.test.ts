/**
 * The SSH transport end to end against real sshd (one per lab host, on loopback): the engine
 * patches lab hosts over SSH to the same report as over the lab transport; the client is copied
 * only when its digests differ; events reach the engine by the callback or by the log file read
 * over SFTP, chosen per host. A Task Scheduler whose status queries fail for a while (a busy RPC)
 * changes nothing: the launch asks again rather than giving the host up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openLabTransport } from '../src/lab/daemon-main.ts';
import { options, projection, runWith, sshLabRun, SKIP_SSH, SMALL, tempDir } from './ssh-helpers.ts';

describe('ssh transport against the SSH lab', { skip: SKIP_SSH }, () => {
  it('patches every host of small.yaml to the same report as the lab transport, through a busy Task Scheduler on web02', async () => {
    const tmp = tempDir('pl-ssh-small-');
    try {
      // Both runs at once: each has its own lab (daemon, host dirs) and state file.
      const lab = openLabTransport({
        scenarioPath: SMALL,
        dir: join(tmp.dir, 'plain-lab'),
        mode: 'process',
        detached: false,
      });
      const plainRun = (async () => {
        try {
          return await runWith(lab, tmp.dir, options(await lab.listTargets()), {
            probeInitialDelayMs: 100,
            probeMaxDelayMs: 250,
            agentPollMs: 1_000,
            streamSilenceMs: 15_000,
            agentRebootGraceMs: 2_000,
          });
        } finally {
          await lab.close();
        }
      })();
      // web02's scheduler fails the first two status queries of every task (as a busy RPC does).
      const [ssh, plain] = await Promise.all([
        sshLabRun(SMALL, tmp.dir, (hosts) => options(hosts), { faults: { web02: { schedulerQueryFails: 2 } } }),
        plainRun,
      ]);
      assert.equal(
        ssh.result.exitCode,
        0,
        `${JSON.stringify(projection(ssh.result.report))}\n${ssh.result.report.hosts.map((h) => `${h.name}: ${h.message}`).join('\n')}\n${ssh.sshdLogs}`,
      );
      assert.deepEqual(projection(ssh.result.report), projection(plain.result.report));
      assert.ok(
        ssh.result.report.hosts.every((h) => h.updates.some((u) => u.result === 'installed')),
        'something was installed on every host',
      );
      assert.ok(
        ssh.notes.some((n) => /stream: the agent's HTTP callback/.test(n.message)),
        'the stream choice is logged',
      );
      assert.ok(
        ssh.labLog.some((l) => /web02: schtasks \/Query of .* failed \(fault schedulerQueryFails\)/.test(l)),
        `the fault fired: ${ssh.labLog.join('\n')}`,
      );
      assert.ok(
        ssh.notes.some(
          (n) =>
            n.host === 'web02' &&
            /schtasks \/Query of task .* failed \(The remote procedure call failed\. \(exit 1\)\): asking again/.test(
              n.message,
            ),
        ),
        `the failed query is said once per launch: ${ssh.notes.map((n) => `${n.host}: ${n.message}`).join('\n')}`,
      );
    } finally {
      tmp.cleanup();
    }
  });
});
