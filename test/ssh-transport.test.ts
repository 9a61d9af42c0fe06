/**
 * The SSH transport end to end against real sshd (one per lab host, on loopback): the engine
 * patches lab hosts over SSH to the same report as over the lab transport; the client is copied
 * only when its digests differ; events reach the engine by the callback or by the log file read
 * over SFTP, chosen per host.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openLabTransport } from '../src/lab/daemon-main.ts';
import { options, projection, runWith, sshLabRun, SKIP_SSH, SMALL, tempDir } from './ssh-helpers.ts';

describe('ssh transport against the SSH lab', { skip: SKIP_SSH }, () => {
  it('patches every host of small.yaml to the same report as the lab transport', async () => {
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
      const [ssh, plain] = await Promise.all([sshLabRun(SMALL, tmp.dir, (hosts) => options(hosts)), plainRun]);
      assert.equal(ssh.result.exitCode, 0, `${JSON.stringify(projection(ssh.result.report))}\n${ssh.sshdLogs}`);
      assert.deepEqual(projection(ssh.result.report), projection(plain.result.report));
      assert.ok(
        ssh.result.report.hosts.every((h) => h.updates.some((u) => u.result === 'installed')),
        'something was installed on every host',
      );
      assert.ok(
        ssh.notes.some((n) => /stream: the agent's HTTP callback/.test(n.message)),
        'the stream choice is logged',
      );
    } finally {
      tmp.cleanup();
    }
  });
});
