/**
 * `patchline run` options → one validated, frozen RunConfig. Everything the command line can get
 * wrong is caught here, before anything starts, with a usage error (exit 64) naming the option.
 * List files (@FILE) are read here too, through the `readText` function passed in.
 */
import { parseList, type UpdateFilters } from '../domain/filters.ts';
import { decodeListFile } from './list-file-text.ts';
import { usageError } from '../domain/errors.ts';
import type { Mode, RebootPolicy } from '../domain/agent-log.ts';
import { REBOOT_POLICIES } from '../domain/agent-log.ts';
import { parseSshRunOptions, type SshRunConfig } from './ssh-run.ts';
import { parseWindowsRunOptions, type WindowsRunConfig } from './windows-run.ts';
import { DEFAULT_MAX_CYCLES, DEFAULT_PARALLEL, DEFAULT_REBOOT_TIMEOUT_MS, DEFAULT_RETRIES } from '../engine/index.ts';

/** Another installer (TrustedInstaller, an MSI) rarely holds WUA longer than this. */
export const DEFAULT_INSTALLER_BUSY_TIMEOUT_MS = 30 * 60_000;
/** How long an agent keeps its log for a connector that lost the stream before writing it to disk. */
export const DEFAULT_LOG_HANDOVER_TIMEOUT_MS = 10 * 60_000;

import { CLASSIFICATIONS, SEVERITY_FILTERS } from '../domain/update.ts';

export const KNOWN_CLASSIFICATIONS = CLASSIFICATIONS;
export const KNOWN_SEVERITIES = SEVERITY_FILTERS;

/** Raw values as commander hands them over (strings, booleans, arrays). */
export interface RawRunOptions {
  readonly lab?: string;
  readonly transport?: string;
  readonly scan?: boolean;
  readonly download?: boolean;
  readonly install?: boolean;
  readonly reboot?: string;
  readonly classification?: string;
  readonly severity?: string;
  readonly product?: string;
  readonly kb?: string;
  readonly excludeKb?: string;
  readonly updateId?: string;
  readonly excludeUpdateId?: string;
  readonly title?: string;
  readonly includeOptional?: boolean;
  readonly includeDrivers?: boolean;
  readonly minAge?: string;
  readonly maxCycles?: string;
  readonly retries?: string;
  readonly rebootTimeout?: string;
  readonly deadline?: string;
  readonly installerBusyTimeout?: string;
  readonly parallel?: string;
  readonly serial?: boolean;
  readonly report?: string;
  readonly logFormat?: string;
  readonly state?: string;
  readonly resume?: string;
  readonly offlineCab?: string;
  readonly labInprocess?: boolean;
  readonly progress?: boolean;
  readonly inventory?: string;
  readonly knownHosts?: string;
  readonly acceptNewHostKeys?: boolean;
  readonly clientDir?: string;
  readonly clientShare?: string;
}

export interface RunConfig {
  readonly targets: readonly string[];
  /** --reboot-timeout was given: a lab run keeps it instead of scaling the default by the scenario's timeScale. */
  readonly rebootTimeoutGiven?: boolean;
  readonly transport: 'lab' | 'ssh' | 'windows';
  readonly labScenario: string | null;
  /** --transport ssh: inventory, host keys, client folder. */
  readonly ssh: SshRunConfig | null;
  /** --transport windows: the client share and the inventory. */
  readonly windows: WindowsRunConfig | null;
  readonly labInProcess: boolean;
  readonly mode: Mode;
  readonly reboot: RebootPolicy;
  readonly filters: UpdateFilters;
  readonly maxCycles: number;
  readonly retries: number;
  readonly rebootTimeoutMs: number;
  /** Relative: the deadline is this long after the run starts (or resumes, see README). */
  readonly deadlineMs: number | null;
  readonly installerBusyTimeoutMs: number;
  readonly parallel: number;
  readonly offlineCab: string | null;
}

export interface OutputConfig {
  readonly reportFile: string | null;
  readonly logFormat: 'text' | 'json';
  readonly stateFile: string | null;
  /** Show the live per-host progress view (only in a terminal; --no-progress turns it off). */
  readonly progress: boolean;
}

export type ParsedRun =
  | { readonly kind: 'new'; readonly config: RunConfig; readonly output: OutputConfig }
  | {
      readonly kind: 'resume';
      readonly runId: string;
      readonly output: OutputConfig;
      readonly deadlineMs: number | null;
      /**
       * Run-defining options given with --resume (a scheduler job re-run with --resume added) and
       * their parsed values: accepted when equal to the saved ones (run-resume.ts compares them).
       */
      readonly given: readonly RunDefiningOption[];
      readonly config: RunConfig;
    };

/** A file list option's bytes (or text, for tests). */
export type ReadText = (file: string) => string | Uint8Array;

/** Options that define a run; with --resume the saved ones are used, so different values are refused. */
export type RunDefiningOption = 'targets' | (typeof RUN_DEFINING)[number];
const RUN_DEFINING = [
  'lab',
  'transport',
  'scan',
  'download',
  'install',
  'reboot',
  'classification',
  'severity',
  'product',
  'kb',
  'excludeKb',
  'updateId',
  'excludeUpdateId',
  'title',
  'includeOptional',
  'includeDrivers',
  'minAge',
  'maxCycles',
  'retries',
  'rebootTimeout',
  'installerBusyTimeout',
  'parallel',
  'serial',
  'offlineCab',
  'labInprocess',
] as const satisfies readonly (keyof RawRunOptions)[];

/** `maxCycles` → `--max-cycles`. */
export const flag = (key: string): string =>
  key === 'targets'
    ? 'the target names'
    : key === 'labInprocess'
      ? '--lab-inprocess'
      : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * `--report --state X`: commander took "--state" as the report file and X became a target. An
 * option value that is itself an option is a forgotten value; say so before X is blamed.
 */
function checkForgottenValues(raw: RawRunOptions): void {
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'string' && /^--[a-z]/.test(value)) {
      throw usageError(
        'USAGE_MISSING_VALUE',
        `${flag(key)} needs a value, but the next word is the option ${value.split('=')[0]}. Give ${flag(key)} its value (e.g. ${flag(key)} ${key === 'report' ? 'report.json' : 'VALUE'}).`,
      );
    }
  }
}

/**
 * Validates the command line of `patchline run`.
 * @example parseRunOptions(['web01'], { lab: 'night.yaml', kb: '@kbs.txt' }, fs.readFileSync-like)
 */
export function parseRunOptions(targets: readonly string[], raw: RawRunOptions, readText: ReadText): ParsedRun {
  checkForgottenValues(raw);
  const output: OutputConfig = Object.freeze({
    reportFile: raw.report ?? null,
    logFormat: oneOf('--log-format', raw.logFormat ?? 'text', ['text', 'json'] as const),
    stateFile: raw.state ?? null,
    progress: raw.progress !== false,
  });

  if (raw.resume !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{3,63}$/.test(raw.resume))
      throw usageError(
        'RESUME_BAD_ID',
        `--resume ${raw.resume}: not a run id. Run ids look like "20261121-0512-7f3a1c"; the log's first line and the report name it, and \`patchline runs\` lists them.`,
      );
    const given: RunDefiningOption[] = RUN_DEFINING.filter((k) => raw[k] !== undefined && raw[k] !== false);
    if (targets.length > 0) given.unshift('targets');
    return {
      kind: 'resume',
      runId: raw.resume,
      output,
      deadlineMs: raw.deadline ? parseDuration('--deadline', raw.deadline) : null,
      given,
      config: parseDefinition(targets, raw, readText, false),
    };
  }
  return { kind: 'new', config: parseDefinition(targets, raw, readText, true), output };
}

/** The options that define a run, validated; `requireLab` is false for a resume (the saved scenario applies). */
function parseDefinition(
  targets: readonly string[],
  raw: RawRunOptions,
  readText: ReadText,
  requireLab: boolean,
): RunConfig {
  const modes = (['scan', 'download', 'install'] as const).filter((m) => raw[m]);
  if (modes.length > 1)
    throw usageError(
      'USAGE_MODE',
      `Choose one of --scan, --download or --install (got ${modes.map((m) => `--${m}`).join(' and ')}).`,
    );
  const mode: Mode = modes[0] ?? 'install';

  if (
    raw.transport !== undefined &&
    raw.transport !== 'lab' &&
    raw.transport !== 'ssh' &&
    raw.transport !== 'windows'
  ) {
    throw usageError(
      'TRANSPORT_UNAVAILABLE',
      `--transport ${raw.transport}: this version has the lab, ssh and windows transports. Use --lab SCENARIO to patch virtual hosts, or --transport ssh --inventory FILE.`,
    );
  }
  const ssh = raw.transport === 'ssh' && requireLab ? parseSshRunOptions(raw) : null;
  const windows = raw.transport === 'windows' && requireLab ? parseWindowsRunOptions(raw) : null;
  if (raw.lab === undefined && requireLab && ssh === null && windows === null) {
    throw usageError(
      'TRANSPORT_UNAVAILABLE',
      'No way to reach real Windows targets yet: this version patches lab hosts only. Give --lab SCENARIO (try examples/lab/patch-night.yaml).',
    );
  }
  if (raw.serial && raw.parallel !== undefined)
    throw usageError('USAGE_PARALLEL', '--serial and --parallel N contradict each other; give one.');

  const filters: UpdateFilters = Object.freeze({
    classifications: nameList('--classification', raw.classification, KNOWN_CLASSIFICATIONS),
    severities: nameList('--severity', raw.severity, KNOWN_SEVERITIES),
    products: nonEmpty('--product', plainList(raw.product), 'a product name, e.g. "Windows Server 2022"'),
    kbs: itemList('--kb', raw.kb, 'kb', readText),
    excludeKbs: itemList('--exclude-kb', raw.excludeKb, 'kb', readText),
    updateIds: itemList('--update-id', raw.updateId, 'guid', readText),
    excludeUpdateIds: itemList('--exclude-update-id', raw.excludeUpdateId, 'guid', readText),
    title: raw.title === undefined ? undefined : checkRegex(raw.title),
    includeOptional: raw.includeOptional ?? false,
    includeDrivers: raw.includeDrivers ?? false,
    minAgeDays: raw.minAge === undefined ? undefined : integer('--min-age', raw.minAge, 0, 3650),
  });

  const config: RunConfig = Object.freeze({
    targets: Object.freeze(checkTargets(targets)),
    transport: raw.transport === 'ssh' || raw.transport === 'windows' ? raw.transport : ('lab' as const),
    labScenario: raw.lab ?? null,
    ssh,
    windows,
    labInProcess: raw.labInprocess ?? false,
    mode,
    reboot: oneOf('--reboot', raw.reboot ?? 'if-required', REBOOT_POLICIES),
    filters,
    maxCycles: raw.maxCycles === undefined ? DEFAULT_MAX_CYCLES : integer('--max-cycles', raw.maxCycles, 1, 100),
    retries: raw.retries === undefined ? DEFAULT_RETRIES : integer('--retries', raw.retries, 0, 20),
    rebootTimeoutMs:
      raw.rebootTimeout === undefined
        ? DEFAULT_REBOOT_TIMEOUT_MS
        : parseDuration('--reboot-timeout', raw.rebootTimeout),
    rebootTimeoutGiven: raw.rebootTimeout !== undefined,
    deadlineMs: raw.deadline === undefined ? null : parseDuration('--deadline', raw.deadline),
    installerBusyTimeoutMs:
      raw.installerBusyTimeout === undefined
        ? DEFAULT_INSTALLER_BUSY_TIMEOUT_MS
        : parseDuration('--installer-busy-timeout', raw.installerBusyTimeout),
    parallel: raw.serial
      ? 1
      : raw.parallel === undefined
        ? DEFAULT_PARALLEL
        : integer('--parallel', raw.parallel, 1, 10_000),
    offlineCab: raw.offlineCab ?? null,
  });
  return config;
}

/** An include filter given but empty (`--product ""`) would silently mean "no filter": refuse it. */
function nonEmpty<T>(option: string, items: T[] | undefined, example: string): T[] | undefined {
  if (items !== undefined && items.length === 0)
    throw usageError('LIST_EMPTY', `${option} is empty; name ${example}, or leave the option out to take every one.`);
  return items;
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw usageError('USAGE_VALUE', `${option} ${value}: must be one of ${allowed.join(', ')}.`);
}

function integer(option: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim()))
    throw usageError('USAGE_VALUE', `${option} ${value}: must be a whole number from ${min} to ${max}.`);
  const n = Number(value);
  if (n < min || n > max) throw usageError('USAGE_VALUE', `${option} ${value}: must be from ${min} to ${max}.`);
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Durations: "90s", "20m", "1h30m", "2h", "1d". A bare number is refused (seconds or minutes?).
 * @example parseDuration('--reboot-timeout', '1h30m') // 5_400_000
 */
export function parseDuration(option: string, value: string): number {
  const text = value.trim().toLowerCase();
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const consumed = parts.map((p) => p[0]).join('');
  if (parts.length === 0 || consumed !== text) {
    throw usageError(
      'USAGE_DURATION',
      `${option} ${value}: not a duration. Write it with a unit, e.g. 90s, 20m, 1h30m or 2h.`,
    );
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  if (ms <= 0) throw usageError('USAGE_DURATION', `${option} ${value}: must be longer than zero.`);
  return ms;
}

function plainList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function nameList<T extends string>(option: string, value: string | undefined, known: readonly T[]): T[] | undefined {
  const items = plainList(value);
  if (items === undefined) return undefined;
  if (items.length === 0)
    throw usageError('USAGE_VALUE', `${option} is empty; name at least one of: ${known.join(', ')}.`);
  return items.map((item) => {
    const match = known.find((k) => k.toLowerCase() === item.toLowerCase());
    if (!match) {
      // A typo here would silently select nothing and report every host compliant: refuse it.
      throw usageError('USAGE_VALUE', `${option}: "${item}" is not a known name. Known: ${known.join(', ')}.`);
    }
    return match;
  });
}

/** A comma list, or @FILE for an OpCon-style list file (one per line, # comments). */
function itemList(
  option: string,
  value: string | undefined,
  kind: 'kb' | 'guid',
  readText: ReadText,
): readonly string[] | undefined {
  if (value === undefined) return undefined;
  let text: string;
  let source: string;
  if (value.startsWith('@')) {
    source = value.slice(1);
    let content: string | Uint8Array;
    try {
      content = readText(source);
    } catch (cause) {
      throw usageError(
        'LIST_UNREADABLE',
        `${option} ${value}: cannot read the list file ${source} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}). Check the path; it is read by the connector, not the targets.`,
        { cause, context: { file: source } },
      );
    }
    text = typeof content === 'string' ? content : decodeListFile(content, source);
  } else {
    source = 'the command line';
    text = value;
  }
  const { items, invalid } = parseList(text, kind);
  if (invalid.length > 0) {
    const what = kind === 'kb' ? 'KB numbers (KB5044444 or 5044444)' : 'update ids (GUIDs)';
    const shown = invalid
      .slice(0, 5)
      .map((i) => (value.startsWith('@') ? `line ${i.line}: "${i.text}"` : `"${i.text}"`))
      .join('; ');
    throw usageError(
      'LIST_INVALID',
      `${option}: ${source} holds entries that are not ${what}: ${shown}${invalid.length > 5 ? ` (+${invalid.length - 5} more)` : ''}.`,
    );
  }
  // An empty exclude list excludes nothing. An empty include list is a mistake (an empty file, an
  // unset variable in `--kb "$KBS"`): taking it as "no filter" would install everything.
  if (items.length === 0 && !option.startsWith('--exclude')) {
    const where = value.startsWith('@') ? `the list file ${source} names nothing` : 'the list is empty';
    throw usageError(
      'LIST_EMPTY',
      `${option} ${value === '' ? '""' : value}: ${where}. An empty include list would select nothing; name at least one, or leave the option out to take every update.`,
    );
  }
  return items;
}

function checkRegex(source: string): string {
  if (source.trim() === '')
    throw usageError(
      'LIST_EMPTY',
      '--title is empty; it would match every update. Give a regular expression, or leave the option out.',
    );
  try {
    new RegExp(source, 'i');
  } catch (cause) {
    throw usageError(
      'USAGE_VALUE',
      `--title ${source}: not a valid regular expression (${(cause as Error).message}).`,
      { cause },
    );
  }
  return source;
}

function checkTargets(targets: readonly string[]): readonly string[] {
  const seen = new Set<string>();
  for (const t of targets) {
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$/.test(t)) throw usageError('USAGE_TARGET', `"${t}" is not a host name.`);
    const key = t.toLowerCase();
    if (seen.has(key)) throw usageError('USAGE_TARGET', `${t} is named twice.`);
    seen.add(key);
  }
  return [...targets];
}
