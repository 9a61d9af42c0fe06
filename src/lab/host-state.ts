/**
 * A virtual host's Windows Update state on disk, so a killed connector meets the hosts as they were.
 *
 * `<hostDir>/state.json` is the WUA side (installed updates and whether their reboot is done,
 * pending reboot, downloaded/hidden sets, accepted EULAs, per-update install attempts, history,
 * installer busy until): written by the simulated provider. `<hostDir>/boot.json` is the boot
 * (bootId = LastBootUpTime, bootCount): written by the lab daemon, read by the provider. Every
 * write is atomic (temp file + fsync + rename). The state transitions are pure functions
 * (`initialHostState`, `applyReboot`) so the daemon and the provider share one definition.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { OperationResultCode } from '../wua/protocol.ts';
import type { ScenarioHost } from './scenario.ts';

export const HOST_STATE_FILE = 'state.json';
export const BOOT_FILE = 'boot.json';
export const HOST_STATE_VERSION = 1;
/** Windows keeps a long history; the lab keeps enough for any run and bounded files at 500 hosts. */
export const HISTORY_LIMIT = 1000;

export interface InstalledUpdate {
  /** ISO-8601 UTC. */
  readonly installedAt: string;
  /** False while the update waits for the reboot that completes it. */
  readonly rebootDone: boolean;
}

export interface HostHistoryEntry {
  readonly updateKey: string;
  readonly updateId: string;
  readonly title: string;
  readonly operation: 'installation' | 'uninstallation';
  readonly resultCode: OperationResultCode;
  readonly hresult: string | null;
  /** ISO-8601 UTC. */
  readonly date: string;
}

export interface HostState {
  readonly version: typeof HOST_STATE_VERSION;
  /** By update key. */
  readonly installed: Readonly<Record<string, InstalledUpdate>>;
  /** ISystemInformation.RebootRequired. */
  readonly rebootPending: boolean;
  /** Keys of the updates whose install asked for the pending reboot (empty when it came from elsewhere). */
  readonly rebootPendingFor: readonly string[];
  readonly downloaded: readonly string[];
  readonly hidden: readonly string[];
  readonly eulasAccepted: readonly string[];
  /** Install attempts per update key (failTimes faults count these). */
  readonly attempts: Readonly<Record<string, number>>;
  /** Oldest first. */
  readonly history: readonly HostHistoryEntry[];
  /** ISO-8601 UTC; the installer reports busy until then (installerBusySeconds fault). */
  readonly installerBusyUntil: string | null;
  /** Scaled milliseconds the installer stays busy after each boot (0: never busy). */
  readonly installerBusyMsAfterBoot: number;
}

/** boot.json. The daemon may keep more fields (reachability); they are preserved. */
export interface BootInfo {
  /** LastBootUpTime as ISO-8601; changes on every boot. */
  readonly bootId: string;
  readonly bootCount: number;
  readonly [extra: string]: unknown;
}

/**
 * The state a host starts with: its scenario's installed updates (reboot done), a pending reboot
 * if the scenario says so, and a busy installer for its first seconds if it has that fault.
 */
export function initialHostState(host: ScenarioHost, now: Date, timeScale: number): HostState {
  const installedAt = now.toISOString();
  const busyMs = Math.round(host.faults.installerBusySeconds * 1000 * timeScale);
  return {
    version: HOST_STATE_VERSION,
    installed: Object.fromEntries(host.installed.map((key) => [key, { installedAt, rebootDone: true }])),
    rebootPending: host.faults.pendingRebootAtStart,
    rebootPendingFor: [],
    downloaded: [],
    hidden: [],
    eulasAccepted: [],
    attempts: {},
    history: [],
    installerBusyUntil: busyMs > 0 ? new Date(now.getTime() + busyMs).toISOString() : null,
    installerBusyMsAfterBoot: busyMs,
  };
}

/**
 * What a completed boot does to WUA's state: every update waiting for a reboot has it done,
 * the pending reboot clears, and the busy-installer fault re-arms (servicing runs after boot).
 */
export function applyReboot(state: HostState, now: Date): HostState {
  const installed = Object.fromEntries(
    Object.entries(state.installed).map(([key, u]) => [key, { ...u, rebootDone: true }]),
  );
  const busyMs = state.installerBusyMsAfterBoot;
  return {
    ...state,
    installed,
    rebootPending: false,
    rebootPendingFor: [],
    installerBusyUntil: busyMs > 0 ? new Date(now.getTime() + busyMs).toISOString() : null,
  };
}

/** Is the installer busy at `now` (IUpdateInstaller.IsBusy)? */
export function installerBusyAt(state: HostState, now: Date): boolean {
  return state.installerBusyUntil !== null && now.getTime() < Date.parse(state.installerBusyUntil);
}

/** Appends a history entry, keeping the newest HISTORY_LIMIT. */
export function withHistory(state: HostState, entry: HostHistoryEntry): HostState {
  const history = [...state.history, entry];
  return { ...state, history: history.length > HISTORY_LIMIT ? history.slice(-HISTORY_LIMIT) : history };
}

/** Writes JSON atomically: a reader sees the old file or the new one, never half of one. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(value, null, 1)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

async function readJson(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as unknown;
}

function isHostState(value: unknown): value is HostState {
  const v = value as Partial<HostState> | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.version === HOST_STATE_VERSION &&
    typeof v.installed === 'object' &&
    Array.isArray(v.downloaded) &&
    Array.isArray(v.history)
  );
}

/** Reads `<hostDir>/state.json`; null when the host has no state yet. Throws on a corrupt file. */
export async function readHostState(hostDir: string): Promise<HostState | null> {
  const path = join(hostDir, HOST_STATE_FILE);
  const value = await readJson(path);
  if (value === undefined) return null;
  if (!isHostState(value))
    throw new Error(
      `${path} is not a Patchline lab host state (version ${HOST_STATE_VERSION}); delete the lab directory to start over`,
    );
  return value;
}

export async function writeHostState(hostDir: string, state: HostState): Promise<void> {
  await writeJsonAtomic(join(hostDir, HOST_STATE_FILE), state);
}

/** Reads `<hostDir>/boot.json`; null when absent. */
export async function readBootFile(hostDir: string): Promise<BootInfo | null> {
  const value = (await readJson(join(hostDir, BOOT_FILE))) as Partial<BootInfo> | undefined;
  if (value === undefined) return null;
  if (typeof value.bootId !== 'string' || typeof value.bootCount !== 'number')
    throw new Error(`${join(hostDir, BOOT_FILE)} has no bootId/bootCount`);
  return value as BootInfo;
}

export async function writeBootFile(hostDir: string, boot: BootInfo): Promise<void> {
  await writeJsonAtomic(join(hostDir, BOOT_FILE), boot);
}

/**
 * Creates the host's directory and initial state (and a first boot.json) if absent; keeps what
 * is there otherwise, so a resumed lab meets its hosts as they were. Returns the state.
 */
export async function initHostDir(
  hostDir: string,
  host: ScenarioHost,
  now: Date,
  timeScale: number,
): Promise<HostState> {
  await mkdir(hostDir, { recursive: true });
  let state = await readHostState(hostDir);
  if (!state) {
    state = initialHostState(host, now, timeScale);
    await writeHostState(hostDir, state);
  }
  if (!(await readBootFile(hostDir))) await writeBootFile(hostDir, { bootId: now.toISOString(), bootCount: 1 });
  return state;
}

/**
 * The daemon calls this when a virtual host finishes booting: applies `applyReboot` to the
 * state on disk. A host without state yet is left alone (initHostDir creates it later).
 */
export async function completeReboot(hostDir: string, now: Date): Promise<HostState | null> {
  const state = await readHostState(hostDir);
  if (!state) return null;
  const next = applyReboot(state, now);
  await writeHostState(hostDir, next);
  return next;
}
