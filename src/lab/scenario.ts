/**
 * Lab scenario files: the catalog of a virtual Windows Update and the virtual hosts that use it.
 *
 * `loadScenario(path)` / `parseScenario(text, sourceName)` read YAML (or JSON, which is YAML),
 * validate every field and return a frozen, fully defaulted `Scenario`. Every problem is a
 * `SCENARIO_INVALID` usage error naming the file, the line and the field path
 * (`hosts[2].faults[0].hresult: must look like 0x80242016`). Host names may hold ranges
 * (`web{01..20}`), which expand here. UpdateIDs are UUIDv5 of the entry's key under a fixed
 * Patchline namespace, so the same file always yields the same ids.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { usageError } from '../domain/errors.ts';
import type { Severity, RebootBehavior, Impact, UpdateType } from '../domain/update.ts';
import { SEVERITIES, REBOOT_BEHAVIORS, UPDATE_TYPES } from '../domain/update.ts';
import { nameUuid } from './name-uuid.ts';
import { expandHostPattern } from './host-range.ts';
import { FieldError, Fields, formatPath, isRecord, toIsoDate, type Path } from './scenario-fields.ts';

export const SCENARIO_DEFAULTS = {
  timeScale: 1,
  reboot: 'never' as RebootBehavior,
  impact: 'normal' as Impact,
  installSeconds: 10,
  sizeMB: 1,
  rebootSeconds: 60,
  optional: false,
  type: 'software' as UpdateType,
  revision: 1,
} as const;

/** A lab of this many hosts is already far beyond what the lab is sized for (500 on 2 cores). */
const MAX_HOSTS = 10_000;

export interface CatalogEntry {
  /** The name used inside the scenario file. */
  readonly key: string;
  /** Lower-case GUID. */
  readonly updateId: string;
  readonly revisionNumber: number;
  /** Digits only, or null for updates without a KB (drivers, some definitions). */
  readonly kb: string | null;
  readonly title: string;
  readonly classification: string;
  readonly severity: Severity | null;
  readonly products: readonly string[];
  readonly sizeMB: number;
  readonly reboot: RebootBehavior;
  /** Scenario files know `normal` and `exclusive`; `minor` is accepted for completeness. */
  readonly impact: Impact;
  readonly installSeconds: number;
  /** ISO-8601 UTC (LastDeploymentChangeTime). */
  readonly released: string;
  /** Keys of prerequisites: each must be installed and its reboot done. */
  readonly requires: readonly string[];
  /** Keys of the updates this one supersedes. */
  readonly supersedes: readonly string[];
  /** BrowseOnly. */
  readonly optional: boolean;
  readonly type: UpdateType;
  /** The update has a EULA that is not yet accepted (install accepts it, as real tools do). */
  readonly eula: boolean;
}

export interface UpdateFailureFault {
  /** `always` (failAlways) or the number of attempts that fail before one succeeds (failTimes). */
  readonly failTimes: number | 'always';
  readonly hresult: string;
}

/** A host's faults, normalised: at most one of each kind (per update for the per-update ones). */
export interface HostFaults {
  /** Install failures by update key. */
  readonly failures: ReadonlyMap<string, UpdateFailureFault>;
  /** Update keys that report success but never stay installed (silent rollback). */
  readonly reappearsAfterInstall: ReadonlySet<string>;
  /** The n-th reboot (1-based) never completes; null when every reboot completes. */
  readonly neverReturnAfterReboot: number | null;
  readonly pendingRebootAtStart: boolean;
  /** Unscaled seconds the installer is busy at start and after every boot; 0 for never. */
  readonly installerBusySeconds: number;
  /** The task scheduler refuses to start anything, with this HRESULT; null when it starts. */
  readonly launchFails: string | null;
}

export interface ScenarioHost {
  readonly name: string;
  readonly product: string;
  /** Keys of updates installed (reboot done) when the host is first created. */
  readonly installed: readonly string[];
  /** Unscaled seconds a reboot takes. */
  readonly rebootSeconds: number;
  readonly faults: HostFaults;
}

export interface Scenario {
  /** The file (or name) it was read from, for messages. */
  readonly source: string;
  /** Multiplies every duration (installs, reboots, busy installer). */
  readonly timeScale: number;
  /** Multiplies payload sizes (sizeMB); payloads are at least PAYLOAD_MIN_BYTES. */
  readonly payloadScale: number;
  readonly catalog: readonly CatalogEntry[];
  readonly hosts: readonly ScenarioHost[];
  readonly byKey: ReadonlyMap<string, CatalogEntry>;
  readonly byId: ReadonlyMap<string, CatalogEntry>;
  readonly hostByName: ReadonlyMap<string, ScenarioHost>;
}

/** Reads and validates a scenario file (.yaml, .yml or .json). */
export async function loadScenario(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw usageError(
      'SCENARIO_INVALID',
      `cannot read scenario file ${path}: ${(error as Error).message}. Check the path given to --scenario.`,
      { cause: error, context: { file: path } },
    );
  }
  return parseScenario(text, path);
}

const GUID_RE = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;
const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SEVERITY_VALUES = [...SEVERITIES, 'none'] as const;
const IMPACT_VALUES = ['normal', 'minor', 'exclusive'] as const;

const CATALOG_FIELDS = [
  'key',
  'id',
  'revision',
  'kb',
  'title',
  'classification',
  'severity',
  'products',
  'sizeMB',
  'reboot',
  'impact',
  'installSeconds',
  'released',
  'requires',
  'supersedes',
  'optional',
  'type',
  'eula',
] as const;
const HOST_FIELDS = ['name', 'product', 'installed', 'rebootSeconds', 'faults'] as const;
const TOP_FIELDS = ['timeScale', 'payloadScale', 'catalog', 'hosts'] as const;

function readCatalogEntry(raw: unknown, path: Path): CatalogEntry {
  if (!isRecord(raw)) throw new FieldError(path, 'must be a mapping with key, title, classification, products …');
  const f = new Fields(raw, path, CATALOG_FIELDS);
  const key = f.string('key');
  if (!KEY_RE.test(key)) throw new FieldError([...path, 'key'], 'must be letters, digits, ".", "_" or "-"');
  let updateId = nameUuid(key);
  if (f.has('id')) {
    const m = GUID_RE.exec(f.string('id'));
    if (!m?.[1]) throw new FieldError([...path, 'id'], 'must be a GUID like 3f6e1b2a-0c4d-4e5f-8a9b-0c1d2e3f4a5b');
    updateId = m[1].toLowerCase();
  }
  let kb: string | null = null;
  if (f.has('kb')) {
    kb = f.string('kb').replace(/^kb\s*/i, '');
    if (!/^\d{4,8}$/.test(kb)) throw new FieldError([...path, 'kb'], 'must be a KB number like 5044444');
  }
  const severity = f.oneOf('severity', SEVERITY_VALUES, 'none');
  const products = f.strings('products');
  if (products.length === 0)
    throw new FieldError([...path, 'products'], 'must name at least one product, e.g. [Windows Server 2022]');
  if (!f.has('released')) throw new FieldError([...path, 'released'], 'is required (a date like 2026-11-11)');
  return {
    key,
    updateId,
    revisionNumber: f.number('revision', SCENARIO_DEFAULTS.revision, { integer: true, min: 0 }),
    kb,
    title: f.string('title'),
    classification: f.string('classification'),
    severity: severity === 'none' ? null : severity,
    products,
    sizeMB: f.number('sizeMB', SCENARIO_DEFAULTS.sizeMB, { positive: true }),
    reboot: f.oneOf('reboot', REBOOT_BEHAVIORS, SCENARIO_DEFAULTS.reboot),
    impact: f.oneOf('impact', IMPACT_VALUES, SCENARIO_DEFAULTS.impact),
    installSeconds: f.number('installSeconds', SCENARIO_DEFAULTS.installSeconds, { min: 0 }),
    released: toIsoDate(raw.released, [...path, 'released']),
    requires: f.strings('requires'),
    supersedes: f.strings('supersedes'),
    optional: f.boolean('optional', SCENARIO_DEFAULTS.optional),
    type: f.oneOf('type', UPDATE_TYPES, SCENARIO_DEFAULTS.type),
    eula: f.boolean('eula', false),
  };
}

const FAULT_SHAPES = [
  '{ update, failTimes, hresult }',
  '{ update, failAlways: true, hresult }',
  '{ neverReturnAfterReboot: N }',
  '{ pendingRebootAtStart: true }',
  '{ installerBusySeconds: N }',
  '{ update, reappearsAfterInstall: true }',
  '{ launchFails: "0x80070005" }',
].join(', ');

interface MutableFaults {
  failures: Map<string, UpdateFailureFault>;
  reappearsAfterInstall: Set<string>;
  neverReturnAfterReboot: number | null;
  pendingRebootAtStart: boolean;
  installerBusySeconds: number;
  launchFails: string | null;
}

function readFault(raw: unknown, path: Path, into: MutableFaults, knownKey: (key: string, p: Path) => void): void {
  if (!isRecord(raw)) throw new FieldError(path, `must be one of ${FAULT_SHAPES}`);
  const once = (kind: string, isSet: boolean) => {
    if (isSet) throw new FieldError(path, `a second ${kind} fault for the same host; give it once`);
  };
  if ('failTimes' in raw || 'failAlways' in raw) {
    const f = new Fields(
      raw,
      path,
      'failTimes' in raw ? ['update', 'failTimes', 'hresult'] : ['update', 'failAlways', 'hresult'],
    );
    const update = f.string('update');
    knownKey(update, [...path, 'update']);
    once(`failure (${update})`, into.failures.has(update));
    let failTimes: number | 'always';
    if ('failTimes' in raw) failTimes = f.number('failTimes', undefined, { integer: true, min: 1 });
    else if (f.boolean('failAlways', false)) failTimes = 'always';
    else throw new FieldError([...path, 'failAlways'], 'must be true (remove the fault to let the update succeed)');
    into.failures.set(update, { failTimes, hresult: f.hresult('hresult') });
  } else if ('reappearsAfterInstall' in raw) {
    const f = new Fields(raw, path, ['update', 'reappearsAfterInstall']);
    const update = f.string('update');
    knownKey(update, [...path, 'update']);
    if (!f.boolean('reappearsAfterInstall', false))
      throw new FieldError([...path, 'reappearsAfterInstall'], 'must be true');
    into.reappearsAfterInstall.add(update);
  } else if ('neverReturnAfterReboot' in raw) {
    const f = new Fields(raw, path, ['neverReturnAfterReboot']);
    once('neverReturnAfterReboot', into.neverReturnAfterReboot !== null);
    into.neverReturnAfterReboot = f.number('neverReturnAfterReboot', undefined, { integer: true, min: 1 });
  } else if ('pendingRebootAtStart' in raw) {
    const f = new Fields(raw, path, ['pendingRebootAtStart']);
    into.pendingRebootAtStart = f.boolean('pendingRebootAtStart', false);
  } else if ('installerBusySeconds' in raw) {
    const f = new Fields(raw, path, ['installerBusySeconds']);
    once('installerBusySeconds', into.installerBusySeconds > 0);
    into.installerBusySeconds = f.number('installerBusySeconds', undefined, { positive: true });
  } else if ('launchFails' in raw) {
    const f = new Fields(raw, path, ['launchFails']);
    once('launchFails', into.launchFails !== null);
    into.launchFails = f.hresult('launchFails');
  } else {
    throw new FieldError(path, `must be one of ${FAULT_SHAPES}`);
  }
}

function readHosts(raw: unknown, path: Path, byKey: ReadonlyMap<string, CatalogEntry>): ScenarioHost[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new FieldError(path, 'must be a list with at least one host');
  const hosts: ScenarioHost[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item, index) => {
    const p = [...path, index];
    if (!isRecord(item)) throw new FieldError(p, 'must be a mapping with name and product');
    const f = new Fields(item, p, HOST_FIELDS);
    const pattern = f.string('name');
    const expanded = expandHostPattern(pattern);
    if (!expanded.ok) throw new FieldError([...p, 'name'], expanded.message);
    const knownKey = (key: string, kp: Path) => {
      if (!byKey.has(key)) throw new FieldError(kp, `unknown update key "${key}" (not in catalog)`);
    };
    const installed = f.strings('installed');
    installed.forEach((key, i) => knownKey(key, [...p, 'installed', i]));
    const faults: MutableFaults = {
      failures: new Map(),
      reappearsAfterInstall: new Set(),
      neverReturnAfterReboot: null,
      pendingRebootAtStart: false,
      installerBusySeconds: 0,
      launchFails: null,
    };
    const rawFaults = item.faults ?? [];
    if (!Array.isArray(rawFaults)) throw new FieldError([...p, 'faults'], 'must be a list of faults');
    rawFaults.forEach((fault, i) => readFault(fault, [...p, 'faults', i], faults, knownKey));
    const shared = {
      product: f.string('product'),
      installed,
      rebootSeconds: f.number('rebootSeconds', SCENARIO_DEFAULTS.rebootSeconds, { min: 0 }),
      faults: Object.freeze(faults) as HostFaults,
    };
    for (const name of expanded.names) {
      const lower = name.toLowerCase();
      const previous = seen.get(lower);
      if (previous !== undefined)
        throw new FieldError(
          [...p, 'name'],
          `host name "${name}" is already used by hosts[${previous}]; host names must be unique`,
        );
      seen.set(lower, index);
      hosts.push(Object.freeze({ name, ...shared }));
    }
    if (hosts.length > MAX_HOSTS)
      throw new FieldError([...p, 'name'], `more than ${MAX_HOSTS} hosts; make the ranges smaller`);
  });
  return hosts;
}

/** Finds a cycle in `requires`; returns the keys along it, or null. */
function findRequiresCycle(
  catalog: readonly CatalogEntry[],
  byKey: ReadonlyMap<string, CatalogEntry>,
): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (key: string): string[] | null => {
    const s = state.get(key);
    if (s === 'done') return null;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(key)), key];
    state.set(key, 'visiting');
    stack.push(key);
    for (const req of byKey.get(key)?.requires ?? []) {
      const cycle = visit(req);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(key, 'done');
    return null;
  };
  for (const entry of catalog) {
    const cycle = visit(entry.key);
    if (cycle) return cycle;
  }
  return null;
}

function buildScenario(doc: unknown, source: string): Scenario {
  if (!isRecord(doc)) throw new FieldError([], 'must be a mapping with timeScale, catalog and hosts');
  const top = new Fields(doc, [], TOP_FIELDS);
  const timeScale = top.number('timeScale', SCENARIO_DEFAULTS.timeScale, { positive: true });
  const payloadScale = top.number('payloadScale', timeScale, { positive: true });
  if (!Array.isArray(doc.catalog) || doc.catalog.length === 0)
    throw new FieldError(['catalog'], 'must be a list with at least one update');
  const catalog = doc.catalog.map((raw, i) => readCatalogEntry(raw, ['catalog', i]));
  const byKey = new Map<string, CatalogEntry>();
  const byId = new Map<string, CatalogEntry>();
  catalog.forEach((entry, i) => {
    if (byKey.has(entry.key)) throw new FieldError(['catalog', i, 'key'], `duplicate key "${entry.key}"`);
    if (byId.has(entry.updateId))
      throw new FieldError(
        ['catalog', i, 'id'],
        `UpdateID ${entry.updateId} is already used by "${byId.get(entry.updateId)?.key}"`,
      );
    byKey.set(entry.key, entry);
    byId.set(entry.updateId, entry);
  });
  catalog.forEach((entry, i) => {
    for (const field of ['requires', 'supersedes'] as const) {
      entry[field].forEach((key, j) => {
        if (!byKey.has(key))
          throw new FieldError(['catalog', i, field, j], `unknown update key "${key}" (not in catalog)`);
        if (key === entry.key)
          throw new FieldError(['catalog', i, field, j], `an update cannot name itself in ${field}`);
      });
    }
  });
  const cycle = findRequiresCycle(catalog, byKey);
  if (cycle) {
    const first = catalog.findIndex((e) => e.key === cycle[0]);
    throw new FieldError(['catalog', first, 'requires'], `prerequisites form a cycle: ${cycle.join(' → ')}`);
  }
  const hosts = readHosts(doc.hosts, ['hosts'], byKey);
  return Object.freeze({
    source,
    timeScale,
    payloadScale,
    catalog: Object.freeze(catalog.map((e) => Object.freeze(e))),
    hosts: Object.freeze(hosts),
    byKey,
    byId,
    hostByName: new Map(hosts.map((h) => [h.name, h])),
  });
}

/**
 * Parses and validates scenario text. `sourceName` names the file in messages.
 *
 * @example parseScenario('timeScale: 0.05\ncatalog: [...]\nhosts: [...]', 'patch-night.yaml')
 */
export function parseScenario(text: string, sourceName: string): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw usageError(
      'SCENARIO_INVALID',
      `${sourceName}${line ? `:${line}` : ''}: not valid YAML/JSON: ${yamlError.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      { cause: yamlError, context: { file: sourceName } },
    );
  }
  try {
    return buildScenario(doc.toJS(), sourceName);
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    // The line of the deepest node of the path that exists in the document.
    let line: number | undefined;
    for (let n = error.path.length; n >= 0 && line === undefined; n--) {
      const node = doc.getIn(error.path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) line = lineCounter.linePos(node.range[0]).line;
    }
    throw usageError(
      'SCENARIO_INVALID',
      `${sourceName}${line ? `:${line}` : ''}: ${formatPath(error.path)}: ${error.message}`,
      {
        context: { file: sourceName, field: formatPath(error.path), ...(line ? { line } : {}) },
      },
    );
  }
}

/** The host named `name`, or a usage error listing a few known names. */
export function scenarioHost(scenario: Scenario, name: string): ScenarioHost {
  const host = scenario.hostByName.get(name);
  if (host) return host;
  const known = scenario.hosts
    .slice(0, 5)
    .map((h) => h.name)
    .join(', ');
  throw usageError(
    'UNKNOWN_HOST',
    `host "${name}" is not in ${scenario.source} (hosts: ${known}${scenario.hosts.length > 5 ? ', …' : ''}).`,
    { context: { host: name, file: scenario.source } },
  );
}
