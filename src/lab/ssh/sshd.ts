/**
 * One virtual host's real OpenSSH server (Debian's /usr/sbin/sshd) on its own loopback port: its
 * config, host key, authorized_keys, the chroot its SFTP sessions see as the Windows file system,
 * and starting/stopping it (a reboot kills the server *and* every connection it holds, as a real
 * reboot does).
 *
 * Layout under `<hostDir>/ssh/`: sshd_config, host key(s), sshd.log. The SFTP chroot is
 * `<hostDir>/drive/` holding `C:/…` (so `/C:/ProgramData/Patchline/…`, the path Windows' OpenSSH
 * shows, lands in the host's own directory), plus what the chrooted sftp-server needs to run:
 * `.lab/` (the binary, its loader and libc), `dev/null`, `etc/passwd`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  realpath,
  rm,
  writeFile,
  chmod,
  lstat,
  symlink,
} from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join, basename } from 'node:path';
import { promisify } from 'node:util';
import { PatchlineError } from '../../domain/errors.ts';

const run = promisify(execFile);

export const SSHD_PATH = '/usr/sbin/sshd';
export const SFTP_SERVER_PATH = '/usr/lib/openssh/sftp-server';
/** What the chrooted sftp-server is linked against (Debian amd64); checked by `sshdAvailable`. */
const SFTP_RUNTIME = ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6'] as const;
/** sshd refuses to start without its privilege-separation directory. */
const PRIVSEP_DIR = '/run/sshd';
/** A starting sshd binds its port within milliseconds; this bounds a loaded machine. */
const LISTEN_TIMEOUT_MS = 30_000;
const LISTEN_POLL_MS = 20;

/** Why the SSH lab cannot run here, or null when it can (root, sshd, sftp-server, chroot). */
export function sshdUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'the SSH lab needs Linux';
  if (process.getuid?.() !== 0) return 'the SSH lab runs sshd and chroot, which need root';
  for (const path of [SSHD_PATH, SFTP_SERVER_PATH, '/usr/sbin/chroot', '/usr/bin/ssh-keygen', ...SFTP_RUNTIME]) {
    if (!existsSync(path)) return `${path} is missing (apt-get install openssh-server)`;
  }
  return null;
}

export interface SshdHostOptions {
  readonly name: string;
  readonly hostDir: string;
  readonly port: number;
  /** The public keys allowed to log in (OpenSSH authorized_keys text). */
  readonly authorizedKeysFile: string;
  /** The program sshd runs for every session (ForceCommand), with its arguments. */
  readonly forcedCommand: string;
  /**
   * Password authentication through a PAM service of the lab's own (see ssh-lab.ts): sshd names
   * its PAM service after the name it runs under, so it is started through `sshdLink`, a symlink
   * to sshd whose file name is the service. Without it only keys are accepted.
   */
  readonly password?: { readonly sshdLink: string };
}

/** Paths of one host's SSH files. */
export function sshPaths(hostDir: string) {
  const dir = join(hostDir, 'ssh');
  return {
    dir,
    config: join(dir, 'sshd_config'),
    log: join(dir, 'sshd.log'),
    /** HOME of every session: empty, so no shell start-up file of the real user is read. */
    home: join(dir, 'home'),
    hostKey: (generation: number) => join(dir, `ssh_host_ed25519_key.${generation}`),
    drive: join(hostDir, 'drive'),
  } as const;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  if (existsSync(to)) return;
  try {
    await link(from, to);
  } catch (error) {
    // Another file system (or a protected hard link): a copy does as well.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM') throw error;
    await copyFile(from, to);
    await chmod(to, 0o755);
  }
}

/**
 * Lays out the SFTP chroot: `C:/ProgramData/Patchline/logs` (with `<hostDir>/logs`, where the lab's
 * task scheduler writes a task's output, pointing into it), and the sftp-server runtime.
 */
export async function prepareDrive(hostDir: string): Promise<void> {
  const { drive } = sshPaths(hostDir);
  const logsInDrive = join(drive, 'C:', 'ProgramData', 'Patchline', 'logs');
  await mkdir(logsInDrive, { recursive: true });
  await mkdir(join(drive, '.lab'), { recursive: true });
  await mkdir(join(drive, 'dev'), { recursive: true });
  await mkdir(join(drive, 'etc'), { recursive: true });
  // What a task writes to C:\ProgramData\Patchline\logs must be what the lab's scheduler writes.
  const logs = join(hostDir, 'logs');
  const stat = await lstat(logs).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (stat === null) await symlink(join('drive', 'C:', 'ProgramData', 'Patchline', 'logs'), logs);
  else if (!stat.isSymbolicLink()) {
    // A host dir the plain lab used before: keep its logs, seen from the drive as well.
    for (const name of await readdir(logs)) await linkOrCopy(join(logs, name), join(logsInDrive, name));
    await rm(logs, { recursive: true });
    await symlink(join('drive', 'C:', 'ProgramData', 'Patchline', 'logs'), logs);
  }
  // The loader is a symlink on Debian: link the file it names, under the name the chroot uses.
  for (const path of [SFTP_SERVER_PATH, ...SFTP_RUNTIME])
    await linkOrCopy(await realpath(path), join(drive, '.lab', basename(path)));
  if (!existsSync(join(drive, 'dev', 'null')))
    await run('mknod', ['-m', '666', join(drive, 'dev', 'null'), 'c', '1', '3']);
  // sftp-server looks its user up by uid.
  await writeFile(join(drive, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  await writeFile(join(drive, 'etc', 'group'), 'root:x:0:\n');
}

/** The last lines of a host's sshd log (for failure messages), or why there are none. */
export async function sshdLogTail(hostDir: string, lines = 40): Promise<string> {
  try {
    return (await readFile(sshPaths(hostDir).log, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(no sshd log: ${(error as Error).message})`;
  }
}

/** Generates the host key of a generation (a `hostKeyChanged` fault moves to the next one). */
export async function ensureHostKey(hostDir: string, generation: number): Promise<string> {
  const path = sshPaths(hostDir).hostKey(generation);
  if (!existsSync(path)) {
    await mkdir(sshPaths(hostDir).dir, { recursive: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `lab-host-key-${generation}`, '-f', path]);
  }
  return path;
}

/** The sshd_config of one host: loopback only, keys only, every session through the forced command. */
export function sshdConfigText(options: SshdHostOptions, hostKey: string): string {
  return [
    `# Patchline SSH lab: ${options.name} (the lab's model of a Windows host; see src/lab/ssh/)`,
    `ListenAddress 127.0.0.1:${options.port}`,
    `HostKey ${hostKey}`,
    'PidFile none',
    // sshd runs the forced command as `<root's login shell> -c …`. Debian's bash, started by sshd,
    // reads /etc/bash.bashrc and ~/.bashrc unless SHLVL says it is nested; root's rc files are the
    // machine's, not the lab's, and may do anything (on the CI image `pyenv init` waits up to 60 s
    // for a rehash lock, on every session). An empty HOME and SHLVL=1 keep every session clean
    // without touching the system account.
    `SetEnv HOME=${sshPaths(options.hostDir).home} SHLVL=1`,
    `AuthorizedKeysFile ${options.authorizedKeysFile}`,
    // Temp dirs are not owned the way StrictModes wants; the files are ours and 0600 anyway.
    'StrictModes no',
    ...(options.password === undefined
      ? ['UsePAM no', 'PasswordAuthentication no']
      : ['UsePAM yes', 'PasswordAuthentication yes']),
    'KbdInteractiveAuthentication no',
    `PermitRootLogin ${options.password === undefined ? 'prohibit-password' : 'yes'}`,
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'PermitTTY no',
    // A connector opens a few channels per host at once (probe, log reads, launch).
    'MaxSessions 32',
    'MaxStartups 200:30:400',
    'LogLevel INFO',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    `ForceCommand ${options.forcedCommand}`,
    '',
  ].join('\n');
}

function childrenOf(pid: number): number[] {
  // /proc/<pid>/task/<pid>/children lists direct children (Linux ≥ 3.5).
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.trim() === '' ? [] : text.trim().split(/\s+/).map(Number);
  } catch (error) {
    // The process is gone: it has no children left.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH')
      return [];
    throw error;
  }
}

/** Every descendant of pid, deepest first. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const child of childrenOf(pid)) out.push(...descendants(child), child);
  return out;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** One host's sshd process: start, drop its connections, stop. */
export class SshdHost {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: SshdHostOptions) {}

  get running(): boolean {
    return this.child !== null;
  }

  get port(): number {
    return this.options.port;
  }

  /** Starts sshd with the host key of `generation`; resolves once it accepts connections. */
  async start(generation: number): Promise<void> {
    if (this.child) return;
    await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
    const paths = sshPaths(this.options.hostDir);
    await mkdir(paths.home, { recursive: true, mode: 0o700 });
    const hostKey = await ensureHostKey(this.options.hostDir, generation);
    await writeFile(paths.config, sshdConfigText(this.options, hostKey));
    const sshd = this.options.password?.sshdLink ?? SSHD_PATH;
    const check = await run(sshd, ['-t', '-f', paths.config]).catch((error: { stderr?: string }) => error);
    if (check instanceof Error)
      throw new PatchlineError(
        'SSH_LAB_SSHD_FAILED',
        `sshd refused the configuration of ${this.options.name} (${paths.config}): ${(check as { stderr?: string }).stderr ?? check.message}`,
        { cause: check, context: { host: this.options.name } },
      );
    // -E: sshd's own log goes to the host's sshd.log as it happens (appended across restarts), so
    // a failing test can show what sshd saw; stderr only carries what sshd says before it opens it.
    const child = spawn(sshd, ['-D', '-E', paths.log, '-f', paths.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_000);
    });
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        if (this.child === child) this.child = null;
        resolve();
      }),
    );
    await this.waitListening(child, () => stderr);
  }

  private async waitListening(child: ChildProcess, stderr: () => string): Promise<void> {
    const { connect } = await import('node:net');
    const deadline = Date.now() + LISTEN_TIMEOUT_MS;
    const why = async () => {
      const said = stderr().trim();
      return `${said === '' ? '' : `; sshd said: ${said}`}; its log (${sshPaths(this.options.hostDir).log}) ends:\n${await sshdLogTail(this.options.hostDir)}`;
    };
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new PatchlineError(
          'SSH_LAB_SSHD_FAILED',
          `sshd for ${this.options.name} exited at start (${child.exitCode ?? child.signalCode})${await why()}`,
          { context: { host: this.options.name } },
        );
      }
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(this.options.port, '127.0.0.1');
        socket.setTimeout(LISTEN_TIMEOUT_MS, () => socket.destroy(new Error('connect timed out')));
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline)
        throw new PatchlineError(
          'SSH_LAB_SSHD_FAILED',
          `sshd for ${this.options.name} did not listen on 127.0.0.1:${this.options.port} within ${LISTEN_TIMEOUT_MS} ms${await why()}`,
          { context: { host: this.options.name } },
        );
      await new Promise((resolve) => setTimeout(resolve, LISTEN_POLL_MS));
    }
  }

  /** Kills every connection (and the sessions under them) but keeps listening: a dropped link. */
  dropConnections(): number {
    const pid = this.child?.pid;
    if (pid === undefined) return 0;
    // Parents first, and everyone frozen before anyone dies: killed one by one, a session's
    // shell could still report its command's death ("Killed", exit 137) over the channel before
    // its own turn came. A dropped link reports nothing; the client just loses the connection.
    const victims = descendants(pid).reverse();
    for (const victim of victims) kill(victim, 'SIGSTOP');
    for (const victim of victims) kill(victim, 'SIGKILL');
    return victims.length;
  }

  /** Stops listening and drops every connection (a reboot or power-off). Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid !== undefined) {
      const victims = descendants(child.pid);
      kill(child.pid, 'SIGKILL');
      for (const victim of victims) kill(victim, 'SIGKILL');
    }
    await this.exited;
  }
}
