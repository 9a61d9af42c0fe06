/**
 * The lab behind a real SSH server: every virtual host of a scenario gets Debian's OpenSSH sshd on
 * its own loopback port (docs/decisions.md: one port per host, no network namespaces). What runs
 * behind sshd is the lab's model of Windows: a forced command hands each command line to
 * windows-model.ts, which plays schtasks, powershell, shutdown and taskkill against the lab daemon's
 * host (its task scheduler and boot), and SFTP sessions run the real sftp-server chrooted into the
 * host's own `drive/` (so `/C:/ProgramData/…` lands in the host's directory). A host that reboots
 * loses its sshd and every connection until it is up again. The SSH session, authentication, host
 * keys, SFTP and dropped connections are real; Windows is not.
 *
 * Faults (per host, SshHostFaults): authentication refused, host key changed after a reboot, sshd
 * not back after a reboot, connections dropped mid-install, a slow link, a callback the host
 * cannot reach (a firewall).
 */
import { execFile } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PatchlineError } from '../../domain/errors.ts';
import { startLabDaemon, type LabDaemon } from '../daemon.ts';
import { loadScenario } from '../scenario.ts';
import {
  SshdHost,
  prepareDrive,
  ensureHostKey,
  sshdLogTail,
  sshdUnavailableReason,
  SFTP_SERVER_PATH,
  SSHD_PATH,
  sshPaths,
} from './sshd.ts';
import { createWindowsModel, type ModelHost, type SshHostFaults } from './windows-model.ts';

const run = promisify(execFile);

export type { SshHostFaults } from './windows-model.ts';

/** A rebooting host still answers for this long (Windows takes seconds to close its network). */
const NETWORK_DOWN_AFTER_MS = 300;

/** The user the lab's sshd lets in: the one running it (root, which sshd and chroot need). */
export const LAB_SSH_USER = 'root';

export interface StartSshLabOptions {
  readonly scenarioPath: string;
  readonly dir: string;
  /** Faults by host name. */
  readonly faults?: Readonly<Record<string, SshHostFaults>>;
  readonly log?: (message: string) => void;
  /**
   * A password every host's sshd accepts for LAB_SSH_USER, besides the connector's key. Checked by
   * a PAM service of this lab's own (/etc/pam.d/patchline-lab-<id>: pam_exec comparing with a 0600
   * file in the lab's directory), removed at close: no system account or its password is touched.
   */
  readonly password?: string;
}

export interface SshLabHost {
  readonly name: string;
  readonly port: number;
  /** The host key files of each generation so far (a `hostKeyChangedAfterReboot` fault adds one). */
  readonly hostDir: string;
}

export interface SshLab {
  readonly dir: string;
  readonly daemon: LabDaemon;
  readonly hosts: readonly SshLabHost[];
  /** The connector's private key, authorized on every host (unless a host refuses it: a fault). */
  readonly clientKeyFile: string;
  /** known_hosts holding every host's current key, as an administrator would record them. */
  readonly knownHostsFile: string;
  /** The OpenSSH public key line of a host's key generation (tests compare fingerprints). */
  hostPublicKey(name: string, generation?: number): Promise<string>;
  /** Drops every SSH connection of a host now (a broken link); the host stays up. */
  dropConnections(name: string): number;
  /** The end of every host's sshd log, host by host: what a failing test shows. */
  sshdLogs(lines?: number): Promise<string>;
  close(): Promise<void>;
}

/** Where PAM reads service files (Linux-PAM: one file per service name). */
const PAM_DIR = '/etc/pam.d';

/**
 * The lab's PAM service for password logins: pam_exec hands the password to `checker` on stdin
 * (NUL-terminated), which compares it with the lab's password file; account and session allow.
 */
function pamServiceText(checker: string): string {
  return [
    "# Patchline SSH lab: password logins to the lab's sshd only (removed when the lab closes).",
    `auth required pam_exec.so quiet expose_authtok ${checker}`,
    'account required pam_permit.so',
    'session required pam_permit.so',
    'password required pam_deny.so',
    '',
  ].join('\n');
}

/** The checker pam_exec runs: exit 0 when the password read on stdin is the lab's for LAB_SSH_USER. */
function passwordCheckerScript(passwordFile: string): string {
  return [
    '#!/bin/sh',
    '# Patchline SSH lab: pam_exec expose_authtok writes the password, NUL-terminated, to stdin.',
    `[ "$PAM_USER" = ${LAB_SSH_USER} ] || exit 1`,
    "given=$(tr -d '\\000')",
    `[ "$given" = "$(cat ${passwordFile})" ]`,
    '',
  ].join('\n');
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * The shell script sshd runs for every session (ForceCommand): SFTP into the chroot, every other
 * command line to the interpreter. With curl the interpreter answers with a few lines of shell
 * (printf of its stdout and stderr, exit code) that the script evaluates — curl starts in
 * milliseconds, node in a fraction of a second on a loaded machine; without curl, forward.mjs.
 */
function forcedCommandScript(forwarder: string, socketPath: string, curl: string | null): string {
  const rest =
    curl === null
      ? `exec ${process.execPath} ${forwarder} "$2" ${socketPath}`
      : [
          `answer=$(${curl} -sS --fail-with-body --unix-socket ${socketPath} --data-raw "$SSH_ORIGINAL_COMMAND" "http://lab/sh/$2") || { echo "lab: the interpreter is not answering" >&2; exit 255; }`,
          'eval "$answer"',
        ].join('\n');
  return [
    '#!/bin/sh',
    "# Patchline SSH lab forced command: $1 = host dir, $2 = host name. sshd puts the client's command",
    '# line, verbatim, in SSH_ORIGINAL_COMMAND (for the SFTP subsystem: the configured sftp-server path).',
    'case "$SSH_ORIGINAL_COMMAND" in',
    `  ${SFTP_SERVER_PATH}) exec /usr/sbin/chroot "$1/drive" /.lab/ld-linux-x86-64.so.2 --library-path /.lab /.lab/sftp-server ;;`,
    'esac',
    rest,
    '',
  ].join('\n');
}

/** `'…'` for sh: every byte literal. */
function shQuote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

/** "SocketError: other side closed (UND_ERR_SOCKET) ← …": an error's causes, for the lab's log. */
function causeChain(cause: unknown): string {
  const parts: string[] = [];
  for (let e = cause, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    parts.push(
      e instanceof Error ? `${e.name}: ${e.message}${typeof code === 'string' ? ` (${code})` : ''}` : String(e),
    );
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' ← ');
}

/** The interpreter's answer as shell the forced command evaluates. */
function asShell(answer: { stdout: string; stderr: string; exitCode: number }): string {
  return `printf '%s' ${shQuote(answer.stdout)}; printf '%s' ${shQuote(answer.stderr)} >&2; exit ${answer.exitCode}\n`;
}

/**
 * Starts the daemon, the interpreter and one sshd per host.
 *
 * @example
 *   const lab = await startSshLab({ scenarioPath: 'examples/lab/small.yaml', dir });
 *   // lab.hosts[0].port, lab.clientKeyFile, lab.knownHostsFile
 *   await lab.close();
 */
export async function startSshLab(options: StartSshLabOptions): Promise<SshLab> {
  const unavailable = sshdUnavailableReason();
  if (unavailable !== null) throw new PatchlineError('SSH_LAB_UNAVAILABLE', `cannot start the SSH lab: ${unavailable}`);
  const dir = resolve(options.dir);
  const log = options.log ?? (() => undefined);
  const labSsh = join(dir, 'ssh-lab');
  await mkdir(labSsh, { recursive: true });
  const scenario = await loadScenario(options.scenarioPath);
  const faults = options.faults ?? {};

  // The connector's key, and an empty key list for hosts that refuse it.
  const clientKeyFile = join(labSsh, 'connector_ed25519');
  if (!existsSync(clientKeyFile))
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'patchline-connector', '-f', clientKeyFile]);
  const authorizedKeys = join(labSsh, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${clientKeyFile}.pub`, 'utf8'), { mode: 0o600 });
  const noKeys = join(labSsh, 'authorized_keys.none');
  await writeFile(noKeys, '', { mode: 0o600 });

  // Password logins: a PAM service named after this lab, and sshd started under that name.
  let pamFile: string | null = null;
  let sshdLink: string | null = null;
  const removePam = async () => {
    if (pamFile !== null) await rm(pamFile, { force: true });
  };

  const socketPath = join(labSsh, 'interpreter.sock');
  await rm(socketPath, { force: true });
  const forwarder = fileURLToPath(new URL('./forward.mjs', import.meta.url));
  const script = join(labSsh, 'forced-command.sh');
  const curl = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p)) ?? null;
  await writeFile(script, forcedCommandScript(forwarder, socketPath, curl));
  await chmod(script, 0o755);

  // Which key generation each host presents, and how many reboots it went through.
  const generation = new Map<string, number>();
  const reboots = new Map<string, number>();
  const sshds = new Map<string, SshdHost>();
  let closing = false;
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  // Each host's sshd stops and starts in the order its boot says (a fast reboot is up again
  // before the delayed stop of its going down has run).
  const order = new Map<string, Promise<unknown>>();
  const inOrder = (name: string, step: () => Promise<unknown>) => {
    const next = (order.get(name) ?? Promise.resolve()).then(step);
    order.set(
      name,
      next.catch(() => undefined),
    );
    track(next);
  };

  const onHostState = (name: string, state: 'up' | 'rebooting' | 'down') => {
    const sshd = sshds.get(name);
    if (!sshd || closing) return;
    const f = faults[name] ?? {};
    if (state !== 'up') {
      reboots.set(name, (reboots.get(name) ?? 0) + 1);
      // The host goes down: its sshd stops answering and every connection breaks — a moment after
      // the reboot was asked for, as on Windows, so `shutdown /r` itself still gets its answer out.
      inOrder(name, () =>
        new Promise((resolve) => setTimeout(resolve, NETWORK_DOWN_AFTER_MS))
          .then(() => sshd.stop())
          .catch((error: unknown) => log(`${name}: stopping sshd: ${(error as Error).message}`)),
      );
      return;
    }
    const n = reboots.get(name) ?? 0;
    if (f.sshdNotBackAfterReboot !== undefined && n >= f.sshdNotBackAfterReboot) {
      log(`${name}: up again, but its sshd is not (fault sshdNotBackAfterReboot: ${f.sshdNotBackAfterReboot})`);
      return;
    }
    if (f.hostKeyChangedAfterReboot !== undefined && n === f.hostKeyChangedAfterReboot) {
      generation.set(name, (generation.get(name) ?? 0) + 1);
      log(`${name}: presents a new host key after reboot ${n} (fault hostKeyChangedAfterReboot)`);
    }
    const gen = generation.get(name) ?? 0;
    inOrder(name, () =>
      sshd.start(gen).catch((error: unknown) => log(`${name}: starting sshd: ${(error as Error).message}`)),
    );
  };

  const daemon = await startLabDaemon({
    scenarioPath: options.scenarioPath,
    dir,
    mode: 'process',
    idleShutdownMs: 0,
    log,
    onHostState,
  });
  const modelHosts = new Map<string, ModelHost>();
  const hosts: SshLabHost[] = [];
  let interpreter: Server | null = null;
  try {
    if (options.password !== undefined) {
      if (!existsSync(PAM_DIR))
        throw new PatchlineError(
          'SSH_LAB_UNAVAILABLE',
          `cannot give the SSH lab a password: ${PAM_DIR} does not exist (PAM is not installed)`,
        );
      const service = `patchline-lab-${randomBytes(6).toString('hex')}`;
      const passwordFile = join(labSsh, 'password');
      await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
      const checker = join(labSsh, 'check-password.sh');
      await writeFile(checker, passwordCheckerScript(passwordFile), { mode: 0o700 });
      pamFile = join(PAM_DIR, service);
      await writeFile(pamFile, pamServiceText(checker), { mode: 0o644 });
      sshdLink = join(labSsh, service);
      await rm(sshdLink, { force: true });
      await symlink(SSHD_PATH, sshdLink);
      log(`SSH lab: password logins for ${LAB_SSH_USER} through the PAM service ${pamFile} (removed at close)`);
    }
    for (const spec of scenario.hosts) {
      const hostDir = daemon.hostDir(spec.name);
      await prepareDrive(hostDir);
      const port = await freePort();
      const f = faults[spec.name] ?? {};
      const sshd = new SshdHost({
        name: spec.name,
        hostDir,
        port,
        authorizedKeysFile: f.authRefused ? noKeys : authorizedKeys,
        forcedCommand: `/bin/sh ${script} ${hostDir} ${spec.name}`,
        ...(sshdLink !== null ? { password: { sshdLink } } : {}),
      });
      sshds.set(spec.name, sshd);
      generation.set(spec.name, 0);
      hosts.push({ name: spec.name, port, hostDir });
      modelHosts.set(spec.name, {
        name: spec.name,
        hostDir,
        drive: sshPaths(hostDir).drive,
        faults: f,
        dropConnections: () => sshd.dropConnections(),
      });
    }
    const model = createWindowsModel({ daemon: { url: daemon.url, token: daemon.token }, hosts: modelHosts, log });
    interpreter = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // /sh/<host> (curl: body = the command line, answer = shell) or /exec (forward.mjs: JSON both ways).
        const shell = req.url?.startsWith('/sh/') === true;
        const { host, command } = shell
          ? { host: decodeURIComponent(req.url!.slice('/sh/'.length)), command: Buffer.concat(chunks).toString('utf8') }
          : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { host: string; command: string });
        const send = (answer: { stdout: string; stderr: string; exitCode: number }) =>
          res.end(shell ? asShell(answer) : JSON.stringify(answer));
        model.exec(host, command).then(send, (error: unknown) => {
          // fetch's own message ("fetch failed") says nothing: the socket error is its cause.
          const cause = causeChain((error as Error).cause);
          log(
            `${host}: interpreting ${JSON.stringify(command)}: ${(error as Error).stack ?? String(error)}${cause === '' ? '' : `\n  caused by ${cause}`}`,
          );
          send({
            stdout: '',
            stderr: `lab: ${(error as Error).message}${cause === '' ? '' : ` (${cause})`}\r\n`,
            exitCode: 1,
          });
        });
      });
    });
    await new Promise<void>((r, reject) => {
      interpreter!.once('error', reject);
      interpreter!.listen(socketPath, r);
    });
    // Hosts that are up answer SSH now; a host mid-reboot (a resumed lab) starts its sshd when up.
    await Promise.all(
      scenario.hosts.map(async (spec) => {
        await ensureHostKey(daemon.hostDir(spec.name), 0);
        const status = await fetch(`${daemon.url}/hosts/${encodeURIComponent(spec.name)}/status`, {
          headers: { authorization: `Bearer ${daemon.token}` },
        });
        const body = (await status.json()) as { reachable?: boolean };
        if (body.reachable === true) await sshds.get(spec.name)!.start(0);
      }),
    );
  } catch (error) {
    closing = true;
    await Promise.all([...sshds.values()].map((s) => s.stop()));
    interpreter?.close();
    await daemon.close();
    await removePam();
    throw error;
  }

  const hostPublicKey = async (name: string, gen?: number): Promise<string> => {
    const hostDir = daemon.hostDir(name);
    return (await readFile(`${sshPaths(hostDir).hostKey(gen ?? generation.get(name) ?? 0)}.pub`, 'utf8')).trim();
  };
  const knownHostsFile = join(labSsh, 'known_hosts');
  const lines: string[] = [];
  for (const h of hosts) {
    const [type, key] = (await hostPublicKey(h.name, 0)).split(/\s+/);
    lines.push(`[127.0.0.1]:${h.port} ${type} ${key}`);
  }
  await writeFile(knownHostsFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  log(
    `SSH lab: ${hosts.length} hosts behind sshd on 127.0.0.1 (ports ${hosts.map((h) => h.port).join(', ')}); the Windows behind them is the lab's model`,
  );

  let closed: Promise<void> | null = null;
  return {
    dir,
    daemon,
    hosts,
    clientKeyFile,
    knownHostsFile,
    hostPublicKey,
    dropConnections: (name) => sshds.get(name)?.dropConnections() ?? 0,
    async sshdLogs(lines = 20) {
      const parts = await Promise.all(
        hosts.map(
          async (h) => `--- sshd of ${h.name} (127.0.0.1:${h.port}) ---\n${await sshdLogTail(h.hostDir, lines)}`,
        ),
      );
      return parts.join('\n');
    },
    close() {
      closed ??= (async () => {
        closing = true;
        await Promise.all([...pending]);
        await Promise.all([...sshds.values()].map((s) => s.stop()));
        await new Promise<void>((r) => interpreter!.close(() => r()));
        await daemon.close();
        await rm(socketPath, { force: true });
        await removePam();
      })();
      return closed;
    },
  };
}
