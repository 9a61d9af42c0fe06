/**
 * `patchline run --transport windows`: its options (--client-share, --inventory), validated once,
 * and the transport they describe (src/transports/windows/transport.ts). Kept apart from
 * run-options/run-job, like ssh-run.ts, so the transports' wiring does not tread on each other.
 *
 * The windows transport drives schtasks.exe, CIM and admin shares from the connector: it can only
 * run on a Windows connector, and says so elsewhere instead of failing half-way.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { loadInventory } from '../transports/inventory.ts';
import type { Transport } from '../transports/transport.ts';
import { nodeWindowsExecutor } from '../transports/windows/executor.ts';
import { createWindowsTransport } from '../transports/windows/transport.ts';

export interface WindowsRunConfig {
  /** The share holding the client folders (`\\files01\patchline`). */
  readonly clientShare: string;
  readonly inventory: string | null;
}

/** What a run keeps so --resume rebuilds the same transport. */
export type WindowsTransportConfig = {
  readonly kind: 'windows';
  readonly windows: WindowsRunConfig;
  readonly clientVersion: string;
};

/** A UNC path: `\\server\share[\…]` — the targets' SYSTEM accounts must reach it over the network. */
const UNC_PATH = /^\\\\[^\\/]+\\[^\\/]+/;

/** Adds the windows transport's options to `patchline run` (an --inventory another transport added is reused). */
export function addWindowsRunOptions(command: Command): Command {
  if (!command.options.some((o) => o.long === '--inventory'))
    command.option('--inventory <file>', 'servers.yaml: targets, groups, addresses');
  return command.option(
    '--client-share <unc>',
    'the share `patchline client pack` laid the client out on (\\\\server\\share); --transport windows',
  );
}

function notOnWindows(): Error {
  return usageError(
    'TRANSPORT_UNAVAILABLE',
    '--transport windows drives schtasks.exe and CIM from the connector, so the connector must run on Windows. From Linux or macOS use --transport ssh (OpenSSH Server on the targets).',
  );
}

/** Validates the options (usage errors, exit 64). */
export function parseWindowsRunOptions(
  raw: { clientShare?: string; inventory?: string; lab?: string },
  platform: NodeJS.Platform = process.platform,
): WindowsRunConfig {
  if (platform !== 'win32') throw notOnWindows();
  if (raw.lab !== undefined)
    throw usageError(
      'USAGE',
      '--transport windows reaches real servers; the lab is reached with --transport lab (or ssh). Leave out --lab or the transport.',
    );
  if (raw.clientShare === undefined)
    throw usageError(
      'WINDOWS_NO_CLIENT_SHARE',
      "--transport windows needs --client-share \\\\server\\share: where `patchline client pack` laid the client out (readable by the targets' computer accounts).",
    );
  if (!UNC_PATH.test(raw.clientShare))
    throw usageError(
      'WINDOWS_NO_CLIENT_SHARE',
      `--client-share ${raw.clientShare} is not a UNC path (\\\\server\\share): the targets read the client over the network as SYSTEM.`,
    );
  return Object.freeze({
    clientShare: raw.clientShare.replace(/\\+$/, ''),
    inventory: raw.inventory === undefined ? null : resolve(raw.inventory),
  });
}

/**
 * The transport for a run and the targets it resolves the names to (every inventory host when
 * none are given). `platform` is injected for tests.
 */
export async function openWindowsRunTransport(
  config: WindowsTransportConfig,
  targets: readonly string[],
  platform: NodeJS.Platform = process.platform,
): Promise<{ transport: Transport; targets: readonly string[] }> {
  if (platform !== 'win32') throw notOnWindows();
  const inventory = config.windows.inventory === null ? null : await loadInventory(config.windows.inventory);
  if (inventory === null && targets.length === 0)
    throw usageError(
      'RUN_NO_TARGETS',
      'name the servers to patch, or give --inventory servers.yaml (every host of it is patched).',
    );
  const transport = createWindowsTransport({
    executor: nodeWindowsExecutor(),
    clientShare: config.windows.clientShare,
    clientVersion: config.clientVersion,
    inventory,
    log: (message) => process.stderr.write(`patchline: windows: ${message}\n`),
  });
  const resolved = await transport.resolveTargets(targets.length > 0 ? targets : ['all']);
  return { transport, targets: resolved };
}

/** Patchline's version: the client folder on the share the run uses (`<share>\<version>`). */
export function clientVersion(): string {
  // Read lazily: only a windows run needs it, and the lab's bundle has no package.json beside it.
  const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0-dev';
}
