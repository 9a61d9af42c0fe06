/**
 * `patchline run --transport ssh`: its options (--inventory, --known-hosts, --accept-new-host-keys,
 * --client-dir), validated once, and the transport they describe — the real SSH transport over an
 * inventory, or with --lab the SSH lab (each virtual host behind its own sshd) and the same
 * transport pointed at it. Kept apart from run-options/run-job so the other transports' wiring
 * and this one do not tread on each other.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { loadInventory, resolveInventoryTargets, type InventoryHost } from '../transports/inventory.ts';
import type { SshTarget } from '../transports/ssh/connection.ts';
import { createSshTransport } from '../transports/ssh/ssh-transport.ts';
import type { Transport } from '../transports/transport.ts';

export interface SshRunConfig {
  readonly inventory: string | null;
  /** Default: known_hosts beside the state file (the lab: the lab's own, holding its hosts' keys). */
  readonly knownHosts: string | null;
  readonly acceptNewHostKeys: boolean;
  /** A folder laid out by `patchline client pack`, copied to each target when digests differ. */
  readonly clientDir: string | null;
}

/** What a run keeps so --resume rebuilds the same transport. */
export type SshTransportConfig = {
  readonly kind: 'ssh';
  readonly ssh: SshRunConfig;
  readonly stateFile: string;
  readonly lab?: { readonly scenario: string; readonly dir: string };
};

/** Adds the SSH options to `patchline run` (an --inventory another transport added is reused). */
export function addSshRunOptions(command: Command): Command {
  if (!command.options.some((o) => o.long === '--inventory'))
    command.option('--inventory <file>', 'servers.yaml: targets, groups, users, keys (--transport ssh)');
  return command
    .option(
      '--known-hosts <file>',
      'OpenSSH known_hosts file to check host keys against (default: known_hosts beside the state file)',
    )
    .option(
      '--accept-new-host-keys',
      'record the key of a host never seen before (OpenSSH accept-new); a changed key is always refused',
    )
    .option(
      '--client-dir <dir>',
      'the client folder from `patchline client pack`, copied to C:\\ProgramData\\Patchline\\<version> when its digests differ',
    );
}

/** Validates the SSH options (usage errors, exit 64). */
export function parseSshRunOptions(raw: {
  inventory?: string;
  knownHosts?: string;
  acceptNewHostKeys?: boolean;
  clientDir?: string;
  lab?: string;
}): SshRunConfig {
  if (raw.lab === undefined && raw.inventory === undefined)
    throw usageError(
      'SSH_NO_INVENTORY',
      '--transport ssh needs --inventory servers.yaml naming the targets (README "Real servers over SSH"), or --lab SCENARIO for the SSH lab.',
    );
  if (raw.lab === undefined && raw.clientDir === undefined)
    throw usageError(
      'SSH_NO_CLIENT',
      '--transport ssh needs --client-dir DIR: the folder `patchline client pack` laid out (node.exe, the agent bundle, wua.ps1, manifest.json).',
    );
  if (raw.clientDir !== undefined && !existsSync(join(raw.clientDir, 'manifest.json')))
    throw usageError(
      'SSH_NO_CLIENT',
      `--client-dir ${raw.clientDir}: no manifest.json there; lay the folder out with \`patchline client pack\`.`,
    );
  return Object.freeze({
    inventory: raw.inventory === undefined ? null : resolve(raw.inventory),
    knownHosts: raw.knownHosts === undefined ? null : resolve(raw.knownHosts),
    acceptNewHostKeys: raw.acceptNewHostKeys ?? false,
    clientDir: raw.clientDir === undefined ? null : resolve(raw.clientDir),
  });
}

function toSshTarget(host: InventoryHost): SshTarget {
  if (host.user === null)
    throw usageError(
      'SSH_NO_USER',
      `no user for ${host.name}: give defaults.user or the host's user in the inventory, or write user@${host.name}.`,
      { context: { host: host.name } },
    );
  const auth = host.auth;
  return {
    name: host.name,
    address: host.address,
    port: host.port,
    user: host.user,
    ...(auth.kind === 'key' ? { keyFile: auth.keyFile } : {}),
    ...(auth.kind === 'agent' ? { agent: true } : {}),
    ...(auth.kind === 'passwordEnv' ? { passwordEnv: auth.variable } : {}),
    ...(auth.kind === 'passwordFile' ? { passwordFile: auth.path } : {}),
  };
}

/** Operator notes of the SSH transport go to stderr, one line each (never secrets). */
export function stderrNote(host: string, message: string): void {
  process.stderr.write(`patchline: ssh: ${host}: ${message}\n`);
}

/** Where the SSH lab's own log goes in a CLI run (its daemon runs in this process). */
export function sshLabLogPath(labDir: string): string {
  return join(labDir, 'ssh-lab', 'lab.log');
}

/**
 * The SSH lab's log (its daemon, its sshd starts and stops, what its model of Windows refused) as
 * timestamped lines in DIR/ssh-lab/lab.log, like a detached lab daemon's daemon.log: what a run
 * that went wrong is explained by. Appended synchronously: a few lines per host and reboot.
 */
function labLogFile(labDir: string): (message: string) => void {
  const path = sshLabLogPath(labDir);
  mkdirSync(join(path, '..'), { recursive: true });
  return (message) => appendFileSync(path, `${new Date().toISOString()} ${message}\n`);
}

/**
 * The transport for a run: the SSH lab's (with `lab`), or SSH over the inventory's targets.
 * Returns the targets the inventory resolves the names to (all with none given).
 */
export async function openSshRunTransport(
  config: SshTransportConfig,
  targets: readonly string[],
): Promise<{ transport: Transport; targets: readonly string[] }> {
  if (config.lab) {
    const { openSshLabTransport } = await import('../lab/ssh/lab-transport.ts');
    const transport = await openSshLabTransport({
      scenarioPath: config.lab.scenario,
      dir: config.lab.dir,
      note: stderrNote,
      log: labLogFile(config.lab.dir),
      ...(config.ssh.knownHosts !== null ? { knownHostsFile: config.ssh.knownHosts } : {}),
      acceptNewHostKeys: config.ssh.acceptNewHostKeys,
    });
    return { transport, targets: targets.length > 0 ? targets : await transport.listTargets() };
  }
  const inventory = config.ssh.inventory === null ? null : await loadInventory(config.ssh.inventory);
  const hosts = resolveInventoryTargets(inventory, targets.length > 0 ? targets : ['all']);
  const clientDir = config.ssh.clientDir!;
  const manifest = JSON.parse(readFileSync(join(clientDir, 'manifest.json'), 'utf8')) as { version?: unknown };
  const version =
    typeof manifest.version === 'string' && /^[A-Za-z0-9._-]+$/.test(manifest.version) ? manifest.version : 'current';
  const transport = createSshTransport({
    targets: hosts.map(toSshTarget),
    knownHostsFile: config.ssh.knownHosts ?? join(resolve(config.stateFile, '..'), 'known_hosts'),
    acceptNewHostKeys: config.ssh.acceptNewHostKeys,
    client: { kind: 'copy', dir: clientDir, version },
    env: process.env,
    note: stderrNote,
  });
  return { transport, targets: hosts.map((h) => h.name) };
}
