/**
 * One SSH connection to one target, on ssh2: connects lazily, checks the host key against the
 * known_hosts file before anything is sent, authenticates (key file, SSH agent, password — in that
 * order, whichever the target entry has), and is reused for every exec and SFTP call until it
 * drops; the next call reconnects. Every failure is classified (failures.ts) with the user and the
 * methods tried, never the password.
 */
import { readFile } from 'node:fs/promises';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { SSH_ERROR_CODES, isConnectionLoss, sshError, type SshTransportError } from './failures.ts';
import { hostPattern, type HostKeyVerdict, type KnownHostsFile } from './known-hosts.ts';

/** How one target is reached (an inventory entry, resolved). */
export interface SshTarget {
  /** The name the run uses (inventory name or `host` of `user@host:port`). */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Private key file (OpenSSH or PEM, unencrypted). */
  readonly keyFile?: string;
  /** Use the SSH agent at SSH_AUTH_SOCK. */
  readonly agent?: boolean;
  /** Environment variable holding the password. */
  readonly passwordEnv?: string;
  /** File holding the password (first line). */
  readonly passwordFile?: string;
}

export interface ConnectionOptions {
  readonly knownHosts: KnownHostsFile;
  /** Record keys of hosts never seen before (OpenSSH accept-new) instead of refusing them. */
  readonly acceptNewHostKeys: boolean;
  /** The environment SSH_AUTH_SOCK and password variables are read from. */
  readonly env: NodeJS.ProcessEnv;
  /** TCP connect + key exchange + authentication must finish within this. */
  readonly readyTimeoutMs: number;
  /** Keep-alives detect a dead link while a long read waits. */
  readonly keepaliveIntervalMs: number;
  /** Notes for the operator (a key recorded). */
  readonly note: (host: string, message: string) => void;
}

export interface ExecResult {
  /** Null when the channel closed without an exit status (the connection dropped). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

type AuthMethod = 'publickey' | 'agent' | 'password';

interface Credentials {
  readonly config: Partial<ConnectConfig>;
  readonly methods: readonly AuthMethod[];
  /** How the methods are named in messages: `publickey (key /home/x/.ssh/id_ed25519)`. */
  readonly described: string;
}

async function credentials(target: SshTarget, env: NodeJS.ProcessEnv): Promise<Credentials> {
  const config: Partial<ConnectConfig> = {};
  const methods: AuthMethod[] = [];
  const described: string[] = [];
  if (target.keyFile !== undefined) {
    config.privateKey = await readFile(target.keyFile).catch((cause: unknown) => {
      throw sshError(
        'auth',
        target.name,
        SSH_ERROR_CODES.auth,
        `cannot read the key file ${target.keyFile} for ${target.user}@${target.name}: ${(cause as Error).message}`,
        cause,
      );
    });
    methods.push('publickey');
    described.push(`publickey (key ${target.keyFile})`);
  }
  if (target.agent === true) {
    const sock = env.SSH_AUTH_SOCK;
    if (sock === undefined || sock === '')
      throw sshError(
        'auth',
        target.name,
        SSH_ERROR_CODES.auth,
        `${target.name} is to use the SSH agent, but SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add the key`,
      );
    config.agent = sock;
    methods.push('agent');
    described.push(`agent (${sock})`);
  }
  if (target.passwordEnv !== undefined || target.passwordFile !== undefined) {
    let password: string | undefined;
    if (target.passwordEnv !== undefined) {
      password = env[target.passwordEnv];
      if (password === undefined)
        throw sshError(
          'auth',
          target.name,
          SSH_ERROR_CODES.auth,
          `the password of ${target.user}@${target.name} is to come from the environment variable ${target.passwordEnv}, which is not set`,
        );
      described.push(`password (from $${target.passwordEnv})`);
    } else {
      const file = target.passwordFile!;
      password = (
        await readFile(file, 'utf8').catch((cause: unknown) => {
          throw sshError(
            'auth',
            target.name,
            SSH_ERROR_CODES.auth,
            `cannot read the password file ${file} for ${target.user}@${target.name}: ${(cause as Error).message}`,
            cause,
          );
        })
      ).split(/\r?\n/)[0];
      described.push(`password (from ${file})`);
    }
    config.password = password;
    methods.push('password');
  }
  if (methods.length === 0)
    throw sshError(
      'auth',
      target.name,
      SSH_ERROR_CODES.auth,
      `no credentials for ${target.user}@${target.name}: give a key file, agent: true, or a password variable/file in the inventory`,
    );
  return { config, methods, described: described.join(', ') };
}

/** The message for a refused host key: what was presented, what was expected, what to do. */
export function hostKeyMessage(
  target: SshTarget,
  pattern: string,
  verdict: Exclude<HostKeyVerdict, { status: 'known' }>,
  knownHostsPath: string,
): string {
  if (verdict.status === 'unknown') {
    return (
      `${target.name} (${pattern}) presented a host key this connector has never seen: ${verdict.keyType} ${verdict.fingerprint}; expected: none recorded in ${knownHostsPath}. ` +
      "Compare the fingerprint with the server's (on Windows: ssh-keygen -lf C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub), then run again with --accept-new-host-keys or add it to the known_hosts file."
    );
  }
  if (verdict.status === 'revoked')
    return `${target.name} (${pattern}) presented a revoked host key ${verdict.fingerprint} (${knownHostsPath}): refused.`;
  return (
    `HOST KEY CHANGED: ${target.name} (${pattern}) presented ${verdict.keyType} ${verdict.fingerprint}, but ${knownHostsPath} expects ${verdict.expected.join(' or ')}. ` +
    'Someone may be intercepting the connection, or the server was reinstalled. If the change is expected, remove the old line (ssh-keygen -R ' +
    `"${pattern}" -f ${knownHostsPath}) and run again. Refused.`
  );
}

export class SshConnection {
  private client: Promise<Client> | null = null;
  private sftpSession: Promise<SFTPWrapper> | null = null;
  private closed = false;

  constructor(
    readonly target: SshTarget,
    private readonly options: ConnectionOptions,
  ) {}

  /** The connected client (connecting if needed). Throws a classified TransportError. */
  connect(): Promise<Client> {
    if (this.closed)
      return Promise.reject(
        sshError(
          'internal',
          this.target.name,
          SSH_ERROR_CODES.internal,
          `the connection to ${this.target.name} is closed`,
        ),
      );
    this.client ??= this.open().catch((error: unknown) => {
      this.client = null;
      throw error;
    });
    return this.client;
  }

  private async open(): Promise<Client> {
    const { target, options } = this;
    const creds = await credentials(target, options.env);
    const pattern = hostPattern(target.address, target.port);
    let verdict: HostKeyVerdict | null = null;
    let verifyError: unknown = null;
    const client = new Client();
    return new Promise<Client>((resolve, reject) => {
      let settled = false;
      const fail = (error: SshTransportError) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(error);
      };
      client.once('ready', () => {
        settled = true;
        client.on('error', () => {
          // After ready, errors surface as failed calls (and the close below forgets the client).
        });
        client.once('close', () => {
          if (this.client !== null) {
            this.client = null;
            this.sftpSession = null;
          }
        });
        resolve(client);
      });
      // on, not once: after a refusal the socket may still report its reset, and an 'error' event
      // without a listener would crash the process.
      client.on('error', (error: Error & { level?: string }) => {
        if (verifyError !== null)
          return fail(
            sshError(
              'internal',
              target.name,
              SSH_ERROR_CODES.internal,
              `checking the host key of ${target.name} failed: ${(verifyError as Error).message}`,
              verifyError,
            ),
          );
        if (
          verdict !== null &&
          verdict.status !== 'known' &&
          !(verdict.status === 'unknown' && options.acceptNewHostKeys)
        ) {
          const code = verdict.status === 'unknown' ? SSH_ERROR_CODES.unknownKey : SSH_ERROR_CODES.changedKey;
          return fail(
            sshError(
              'host-key',
              target.name,
              code,
              hostKeyMessage(target, pattern, verdict, options.knownHosts.path),
              error,
            ),
          );
        }
        if (error.level === 'client-authentication') {
          return fail(
            sshError(
              'auth',
              target.name,
              SSH_ERROR_CODES.auth,
              `${target.name} (${pattern}) refused user ${target.user} with ${creds.described}: check the user name and that its key is in the server's authorized keys (administrators: C:\\ProgramData\\ssh\\administrators_authorized_keys), or the password.`,
              error,
            ),
          );
        }
        if (isConnectionLoss(error)) {
          return fail(
            sshError(
              'unreachable',
              target.name,
              SSH_ERROR_CODES.unreachable,
              `${target.name} (${pattern}) does not answer on SSH: ${error.message}`,
              error,
            ),
          );
        }
        return fail(
          sshError(
            'internal',
            target.name,
            SSH_ERROR_CODES.protocol,
            `SSH to ${target.name} (${pattern}) failed: ${error.message}`,
            error,
          ),
        );
      });
      client.once('close', () =>
        fail(
          sshError(
            'unreachable',
            target.name,
            SSH_ERROR_CODES.unreachable,
            `${target.name} (${pattern}) closed the connection before it was ready`,
          ),
        ),
      );
      client.connect({
        host: target.address,
        port: target.port,
        username: target.user,
        ...creds.config,
        readyTimeout: options.readyTimeoutMs,
        keepaliveInterval: options.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        // No keyboard-interactive: nobody is there to answer.
        tryKeyboard: false,
        authHandler: [...creds.methods],
        hostVerifier: (key: Buffer, accept: (ok: boolean) => void) => {
          options.knownHosts
            .check(pattern, key)
            .then(async (v) => {
              verdict = v;
              if (v.status === 'known') return accept(true);
              if (v.status === 'unknown' && options.acceptNewHostKeys) {
                await options.knownHosts.add(pattern, key);
                options.note(
                  target.name,
                  `recorded the host key of ${pattern} (${v.keyType} ${v.fingerprint}) in ${options.knownHosts.path} (--accept-new-host-keys)`,
                );
                return accept(true);
              }
              accept(false);
            })
            .catch((error: unknown) => {
              verifyError = error;
              accept(false);
            });
        },
      } as ConnectConfig);
    });
  }

  /**
   * Runs one command line (what Windows' sshd hands to cmd.exe) and collects its output.
   * A connection that drops mid-command is `unreachable`.
   */
  async exec(command: string, signal: AbortSignal): Promise<ExecResult> {
    signal.throwIfAborted();
    const client = await this.connect();
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (error, stream) => {
        if (error) {
          this.forget(client);
          return reject(
            sshError(
              'unreachable',
              this.target.name,
              SSH_ERROR_CODES.unreachable,
              `${this.target.name}: cannot open an SSH channel: ${error.message}`,
              error,
            ),
          );
        }
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let code: number | null = null;
        // An abort settles at once: the server answers our channel close only when the command's
        // process ends, and a hung command would hold the caller past its own deadline.
        const onAbort = () => {
          stream.close();
          reject(signal.reason);
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (chunk: Buffer) => out.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => err.push(chunk));
        stream.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : null;
        });
        stream.once('close', () => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) return reject(signal.reason);
          resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
      });
    });
  }

  /** The connection's SFTP session (opened once, reopened after a drop). */
  async sftp(): Promise<SFTPWrapper> {
    const client = await this.connect();
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) => {
      // The subsystem starts in milliseconds on a live server; a server that never answers must
      // not hold every SFTP caller of this host.
      const timer = setTimeout(() => {
        this.forget(client);
        reject(
          sshError(
            'unreachable',
            this.target.name,
            SSH_ERROR_CODES.unreachable,
            `${this.target.name}: the SFTP subsystem did not start within ${this.options.readyTimeoutMs} ms`,
          ),
        );
      }, this.options.readyTimeoutMs);
      client.sftp((error, sftp) => {
        clearTimeout(timer);
        if (error) {
          this.sftpSession = null;
          return reject(
            sshError(
              'unreachable',
              this.target.name,
              SSH_ERROR_CODES.unreachable,
              `${this.target.name}: cannot start SFTP: ${error.message}`,
              error,
            ),
          );
        }
        sftp.once('close', () => {
          this.sftpSession = null;
        });
        resolve(sftp);
      });
    });
    return this.sftpSession;
  }

  /** Drops a client that failed, so the next call reconnects. */
  forget(client?: Client): void {
    const current = this.client;
    this.client = null;
    this.sftpSession = null;
    if (current)
      void current.then(
        (c) => (client === undefined || c === client ? c.end() : undefined),
        () => undefined,
      );
  }

  close(): void {
    this.closed = true;
    this.forget();
  }
}
