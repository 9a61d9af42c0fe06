/**
 * What an operator meets when SSH goes wrong, against real sshd (the SSH lab on loopback):
 *  - an unknown host key is refused by default, with its fingerprint; --accept-new-host-keys
 *    records it; a changed key is always refused with both fingerprints;
 *  - the client (exactly the files its manifest lists) is copied only when the target's digests
 *    differ (a tampered file is replaced); a local client that fails its manifest is refused;
 *  - a password from an environment variable or a file logs in (sshd checks it through the lab's
 *    own PAM service); a wrong one fails at once naming user and method, never the password;
 *  - wrong credentials fail that host at once, naming user and method, while the others finish (exit 3);
 *  - a connection dropped mid-install loses no event: the agent's log is read on from its offset.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSshLab, type SshLab } from '../src/lab/ssh/ssh-lab.ts';
import { labClientDir, LAB_CLIENT_VERSION } from '../src/lab/ssh/lab-client.ts';
import { createSshTransport } from '../src/transports/ssh/ssh-transport.ts';
import type { SshTarget } from '../src/transports/ssh/connection.ts';
import { fingerprint } from '../src/transports/ssh/known-hosts.ts';
import { transportFailureOf } from '../src/transports/transport.ts';
import { explainedBySshd, options, projection, sshLabRun, SKIP_SSH, SMALL, tempDir } from './ssh-helpers.ts';

/** The password the lab's sshd accepts for root (through the lab's own PAM service). */
const LAB_PASSWORD = 'lab-password-5b1e';

const keyFingerprint = (publicKeyLine: string): string =>
  fingerprint(Buffer.from(publicKeyLine.split(/\s+/)[1]!, 'base64'));

describe('SSH host keys and the client copy', { skip: SKIP_SSH }, () => {
  const tmp = tempDir('pl-ssh-keys-');
  let lab: SshLab;
  let client: string;
  const notes: string[] = [];
  const transport = (knownHostsFile: string, acceptNewHostKeys = false) =>
    createSshTransport({
      targets: lab.hosts.map((h) => ({
        name: h.name,
        address: '127.0.0.1',
        port: h.port,
        user: 'root',
        keyFile: lab.clientKeyFile,
      })),
      knownHostsFile,
      acceptNewHostKeys,
      client: { kind: 'copy', dir: client, version: LAB_CLIENT_VERSION },
      env: process.env,
      note: (host, message) => notes.push(`${host}: ${message}`),
    });

  before(async () => {
    lab = await startSshLab({ scenarioPath: SMALL, dir: join(tmp.dir, 'lab'), password: LAB_PASSWORD });
    client = await labClientDir(lab.dir);
  });
  after(async () => {
    await lab?.close();
    tmp.cleanup();
  });

  it('refuses an unknown host key by default, naming the host and the fingerprint; accept-new records it', () =>
    explainedBySshd(
      () => lab.sshdLogs(),
      async () => {
        const knownHosts = join(tmp.dir, 'known_hosts.fresh');
        const web01 = lab.hosts[0]!;
        const expected = keyFingerprint(await lab.hostPublicKey(web01.name));
        const strict = transport(knownHosts);
        await assert.rejects(
          strict.probe(web01.name, AbortSignal.timeout(30_000)),
          (error: Error & { code?: string }) => {
            assert.equal(transportFailureOf(error), 'host-key');
            assert.equal(error.code, 'SSH_HOST_KEY_UNKNOWN');
            assert.match(error.message, new RegExp(web01.name));
            assert.ok(error.message.includes(expected), `${error.message} names ${expected}`);
            assert.match(error.message, /expected: none recorded/);
            return true;
          },
        );
        await strict.close();

        const accepting = transport(knownHosts, true);
        assert.equal((await accepting.probe(web01.name, AbortSignal.timeout(30_000))).reachable, true);
        await accepting.close();
        assert.match(
          await readFile(knownHosts, 'utf8'),
          new RegExp(`^\\[127\\.0\\.0\\.1\\]:${web01.port} ssh-ed25519 `, 'm'),
        );
        assert.ok(
          notes.some((n) => n.includes(expected) && /recorded/.test(n)),
          'the operator is told which key was recorded',
        );

        // Recorded: a strict connector now accepts it.
        const again = transport(knownHosts);
        assert.equal((await again.probe(web01.name, AbortSignal.timeout(30_000))).reachable, true);
        await again.close();
      },
    ));

  it('always refuses a changed host key, with both fingerprints, even with --accept-new-host-keys', () =>
    explainedBySshd(
      () => lab.sshdLogs(),
      async () => {
        const [web01, web02] = lab.hosts;
        const knownHosts = join(tmp.dir, 'known_hosts.changed');
        // web01's entry holds web02's key: what a reinstalled server (or a man in the middle) looks like.
        const otherKey = (await lab.hostPublicKey(web02!.name)).split(/\s+/);
        await writeFile(knownHosts, `[127.0.0.1]:${web01!.port} ${otherKey[0]} ${otherKey[1]}\n`);
        const presented = keyFingerprint(await lab.hostPublicKey(web01!.name));
        const recorded = keyFingerprint(otherKey.join(' '));
        const t = transport(knownHosts, true);
        await assert.rejects(t.probe(web01!.name, AbortSignal.timeout(30_000)), (error: Error & { code?: string }) => {
          assert.equal(transportFailureOf(error), 'host-key');
          assert.equal(error.code, 'SSH_HOST_KEY_CHANGED');
          assert.ok(error.message.includes(presented) && error.message.includes(recorded), error.message);
          assert.match(error.message, new RegExp(`${web01!.name}.*127\\.0\\.0\\.1\\]:${web01!.port}`));
          return true;
        });
        await t.close();
        assert.equal((await readFile(knownHosts, 'utf8')).trim().split('\n').length, 1, 'nothing was recorded');
      },
    ));

  it("copies exactly the manifest's files, only when the target's digests differ, and only the files that differ", () =>
    explainedBySshd(
      () => lab.sshdLogs(),
      async () => {
        const host = lab.hosts[1]!;
        const onTargetDir = join(host.hostDir, 'drive', 'C:', 'ProgramData', 'Patchline', LAB_CLIENT_VERSION);
        // A file the manifest does not list (an editor's backup, a note) is not part of the client.
        await writeFile(join(client, 'notes.txt'), 'not part of the client\n');
        const listed = Object.keys(
          (JSON.parse(await readFile(join(client, 'manifest.json'), 'utf8')) as { files: Record<string, unknown> })
            .files,
        );
        assert.ok(
          listed.includes('patchline.mjs') && listed.includes('wua.ps1') && listed.includes('node.exe'),
          listed.join(', '),
        );
        const t = transport(lab.knownHostsFile);
        try {
          notes.length = 0;
          await t.prepare(host.name, {}, AbortSignal.timeout(60_000));
          assert.match(
            notes.join('\n'),
            new RegExp(`copied ${listed.length + 1} of ${listed.length + 1} client files`),
          );
          assert.deepEqual(
            (await readdir(onTargetDir)).sort(),
            [...listed, 'manifest.json'].sort(),
            "the manifest's files and the manifest, nothing else",
          );
          notes.length = 0;
          await t.prepare(host.name, {}, AbortSignal.timeout(60_000));
          assert.match(notes.join('\n'), /already in .*digests match/);
          // Someone changes the bundle on the target: the next prepare puts back exactly that file.
          const onTarget = join(
            host.hostDir,
            'drive',
            'C:',
            'ProgramData',
            'Patchline',
            LAB_CLIENT_VERSION,
            'patchline.mjs',
          );
          await appendFile(onTarget, '\n// tampered\n');
          notes.length = 0;
          await t.prepare(host.name, {}, AbortSignal.timeout(60_000));
          assert.match(notes.join('\n'), /copied 1 of \d+ client files .*: patchline\.mjs$/m);
          assert.equal(await readFile(onTarget, 'utf8'), await readFile(join(client, 'patchline.mjs'), 'utf8'));
        } finally {
          await t.close();
        }
        // A local client that no longer matches its manifest is refused before anything is copied.
        const broken = join(tmp.dir, 'client-broken');
        await cp(client, broken, { recursive: true });
        await appendFile(join(broken, 'wua.ps1'), '\n# edited after the pack\n');
        const refusing = createSshTransport({
          targets: [
            { name: host.name, address: '127.0.0.1', port: host.port, user: 'root', keyFile: lab.clientKeyFile },
          ],
          knownHostsFile: lab.knownHostsFile,
          acceptNewHostKeys: false,
          client: { kind: 'copy', dir: broken, version: LAB_CLIENT_VERSION },
          env: process.env,
          note: () => undefined,
        });
        try {
          await assert.rejects(
            refusing.prepare(host.name, {}, AbortSignal.timeout(60_000)),
            (error: Error & { code?: string }) => {
              assert.equal(error.code, 'CLIENT_TAMPERED');
              assert.match(error.message, /wua\.ps1 does not match its manifest/);
              return true;
            },
          );
        } finally {
          await refusing.close();
        }
      },
    ));

  it('logs in with a password from an environment variable or a file; a wrong one fails at once naming user and method, never the password', () =>
    explainedBySshd(
      () => lab.sshdLogs(),
      async () => {
        const web01 = lab.hosts[0]!;
        const withPassword = (auth: Pick<SshTarget, 'passwordEnv' | 'passwordFile'>, env: NodeJS.ProcessEnv) =>
          createSshTransport({
            targets: [{ name: web01.name, address: '127.0.0.1', port: web01.port, user: 'root', ...auth }],
            knownHostsFile: lab.knownHostsFile,
            acceptNewHostKeys: false,
            client: { kind: 'share', path: '\\\\files01\\patchline' },
            env,
            note: () => undefined,
          });
        const probe = async (t: ReturnType<typeof withPassword>) => {
          try {
            return await t.probe(web01.name, AbortSignal.timeout(30_000));
          } finally {
            await t.close();
          }
        };
        const before = (await lab.sshdLogs(1_000)).match(/Accepted password for root/g)?.length ?? 0;
        assert.equal(
          (
            await probe(
              withPassword(
                { passwordEnv: 'PATCHLINE_TEST_SSH_PASSWORD' },
                { PATCHLINE_TEST_SSH_PASSWORD: LAB_PASSWORD },
              ),
            )
          ).reachable,
          true,
        );
        const passwordFile = join(tmp.dir, 'password.txt');
        await writeFile(passwordFile, `${LAB_PASSWORD}\n`, { mode: 0o600 });
        assert.equal((await probe(withPassword({ passwordFile }, {}))).reachable, true);
        // sshd itself says so: these were password logins, not the connector's key.
        assert.equal(
          (await lab.sshdLogs(1_000)).match(/Accepted password for root/g)?.length ?? 0,
          before + 2,
          'two password logins',
        );

        const wrong = 'not-the-password-7f3a';
        const started = Date.now();
        await assert.rejects(
          probe(withPassword({ passwordEnv: 'PATCHLINE_TEST_SSH_PASSWORD' }, { PATCHLINE_TEST_SSH_PASSWORD: wrong })),
          (error: Error & { code?: string }) => {
            assert.equal(transportFailureOf(error), 'auth');
            assert.equal(error.code, 'SSH_AUTH_FAILED');
            assert.match(error.message, /refused user root with password \(from \$PATCHLINE_TEST_SSH_PASSWORD\)/);
            assert.ok(
              !error.message.includes(wrong) && !JSON.stringify(error).includes(wrong),
              'the password is never in the error',
            );
            return true;
          },
        );
        assert.ok(Date.now() - started < 20_000, `refused at once, not after a wait (${Date.now() - started} ms)`);
        await assert.rejects(
          probe(withPassword({ passwordEnv: 'PATCHLINE_TEST_SSH_UNSET' }, {})),
          /PATCHLINE_TEST_SSH_UNSET, which is not set/,
        );
      },
    ));
});

describe('SSH failures during a run', { skip: SKIP_SSH }, () => {
  it('wrong credentials fail that host at once (user and method named) while a host whose link drops mid-install finishes with every event', async () => {
    const tmp = tempDir('pl-ssh-faults-');
    try {
      const run = await sshLabRun(SMALL, tmp.dir, (hosts) => options(hosts, { rebootTimeoutMs: 10 * 60_000 }), {
        faults: { web01: { callbackBlocked: true, dropConnectionMidInstall: true }, web02: { authRefused: true } },
      });
      await explainedBySshd(
        () => run.sshdLogs,
        async () => {
          const hosts = Object.fromEntries(run.result.report.hosts.map((h) => [h.name, h]));
          assert.equal(run.result.exitCode, 3, JSON.stringify(projection(run.result.report)));

          // web02: refused at once, with what to fix; not a wait for the 10-minute reboot timeout.
          assert.equal(hosts.web02?.outcome, 'access-denied', JSON.stringify(hosts.web02));
          assert.match(hosts.web02?.message ?? '', /refused user root with publickey \(key .*connector_ed25519\)/);
          const web02End = run.events.find((e) => e.kind === 'host-finished' && e.host === 'web02');
          const started = run.events.find((e) => e.kind === 'run-started');
          assert.ok(
            web02End && started && Date.parse(web02End.at) - Date.parse(started.at) < 60_000,
            'web02 ended within a minute',
          );

          // web01: its events came from the log file over SFTP; the link broke mid-install and nothing was lost.
          assert.equal(
            hosts.web01?.outcome,
            'compliant',
            `${JSON.stringify(hosts.web01)}\n${run.notes.map((n) => `${n.host}: ${n.message}`).join('\n')}\n${run.labLog.join('\n')}`,
          );
          assert.ok(
            run.labLog.some((l) => /web01: dropped every SSH connection mid-install/.test(l)),
            'the fault fired',
          );
          const notes = run.notes.filter((n) => n.host === 'web01').map((n) => n.message);
          assert.ok(
            notes.some((m) =>
              /stream: the agent's log file read over SFTP by byte offset \(the target cannot reach/.test(m),
            ),
            notes.join('\n'),
          );
          assert.ok(
            notes.some((m) =>
              /read the agent's log on from byte \d+ after the connection came back: nothing lost/.test(m),
            ),
            notes.join('\n'),
          );
          const byCycle = new Map<number, number[]>();
          for (const e of run.events)
            if (e.kind === 'agent-event' && e.host === 'web01' && e.event.seq > 0)
              byCycle.set(e.cycle, [...(byCycle.get(e.cycle) ?? []), e.event.seq]);
          assert.ok(
            byCycle.size >= 2,
            `several cycles: ${JSON.stringify([...byCycle])} ${JSON.stringify(run.events.filter((e) => e.host === 'web01').map((e) => e.kind))}`,
          );
          for (const [cycle, seqs] of byCycle) {
            const unique = [...new Set(seqs)].sort((a, b) => a - b);
            assert.deepEqual(
              unique,
              unique.map((_, i) => i + 1),
              `cycle ${cycle}: every event from 1 on, no gap`,
            );
          }
          assert.ok(
            hosts.web01.updates.filter((u) => u.result === 'installed').length >= 3,
            `the chain was installed: ${JSON.stringify(hosts.web01.updates)}`,
          );
        },
      );
    } finally {
      tmp.cleanup();
    }
  });
});
