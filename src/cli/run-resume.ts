/**
 * What `--resume RUN_ID` needs besides the engine: which given options differ from the ones the
 * run was started with (equal ones are accepted, so a scheduler job can be re-run with --resume
 * added), and the exact command line that resumes a run (printed on exits 3, 4, 5 and 70).
 * Pure functions of the saved options and the command line.
 */
import { resolve } from 'node:path';
import type { RunOptions } from '../engine/index.ts';
import { formatMs } from '../domain/cycle.ts';
import { flag, type RunConfig, type RunDefiningOption } from './run-options.ts';
import type { SshTransportConfig } from './ssh-run.ts';
import type { WindowsTransportConfig } from './windows-run.ts';

/** What the CLI keeps with a run (RunOptions.meta) to rebuild its side on resume. */
export interface RunMeta {
  readonly transportConfig?:
    | { readonly kind: 'lab'; readonly scenario: string; readonly dir: string; readonly inProcess: boolean }
    | SshTransportConfig
    | WindowsTransportConfig;
  /** Absolute path of the --report file the run was started with: a resume rewrites it. */
  readonly reportFile?: string;
  /** --offline-cab as given (a URL is saved downloaded, as a local file, in offlineCabSource). */
  readonly offlineCab?: string;
}

export interface ResumeConflict {
  readonly option: string;
  readonly given: string;
  readonly saved: string;
}

const show = (v: unknown): string =>
  v === undefined || v === null ? '(none)' : Array.isArray(v) ? (v.length === 0 ? '(none)' : v.join(',')) : String(v);
const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  JSON.stringify([...(a ?? [])].map((x) => x.toLowerCase()).sort()) ===
  JSON.stringify([...(b ?? [])].map((x) => x.toLowerCase()).sort());

/**
 * The given run-defining options whose values differ from the saved run's.
 * @example resumeConflicts(['maxCycles'], config, saved) // [{ option: '--max-cycles', given: '3', saved: '5' }]
 */
export function resumeConflicts(
  given: readonly RunDefiningOption[],
  config: RunConfig,
  saved: RunOptions,
): ResumeConflict[] {
  const meta = (saved.meta ?? {}) as RunMeta;
  const f = config.filters;
  const s = saved.filters;
  const conflicts: ResumeConflict[] = [];
  const check = (option: string, equal: boolean, givenValue: unknown, savedValue: unknown) => {
    if (!equal) conflicts.push({ option, given: show(givenValue), saved: show(savedValue) });
  };
  const modeFlags = new Set<string>();
  const tc = meta.transportConfig;
  const savedScenario = tc?.kind === 'lab' ? tc.scenario : tc?.kind === 'ssh' ? tc.lab?.scenario : undefined;
  const savedInProcess = tc?.kind === 'lab' && tc.inProcess;
  for (const key of given) {
    switch (key) {
      case 'targets':
        check(flag(key), sameList(config.targets, saved.targets), config.targets, saved.targets);
        break;
      case 'lab':
        check(
          '--lab',
          config.labScenario !== null && resolve(config.labScenario) === savedScenario,
          config.labScenario,
          savedScenario,
        );
        break;
      case 'transport':
        break; // only 'lab' exists, and parsing refused anything else
      case 'scan':
      case 'download':
      case 'install':
        if (!modeFlags.has('mode')) check(`--${config.mode}`, config.mode === saved.mode, config.mode, saved.mode);
        modeFlags.add('mode');
        break;
      case 'reboot':
        check('--reboot', config.reboot === saved.reboot, config.reboot, saved.reboot);
        break;
      case 'classification':
        check(flag(key), sameList(f.classifications, s.classifications), f.classifications, s.classifications);
        break;
      case 'severity':
        check(flag(key), sameList(f.severities, s.severities), f.severities, s.severities);
        break;
      case 'product':
        check(flag(key), sameList(f.products, s.products), f.products, s.products);
        break;
      case 'kb':
        check(flag(key), sameList(f.kbs, s.kbs), f.kbs, s.kbs);
        break;
      case 'excludeKb':
        check(flag(key), sameList(f.excludeKbs, s.excludeKbs), f.excludeKbs, s.excludeKbs);
        break;
      case 'updateId':
        check(flag(key), sameList(f.updateIds, s.updateIds), f.updateIds, s.updateIds);
        break;
      case 'excludeUpdateId':
        check(flag(key), sameList(f.excludeUpdateIds, s.excludeUpdateIds), f.excludeUpdateIds, s.excludeUpdateIds);
        break;
      case 'title':
        check(flag(key), f.title === s.title, f.title, s.title);
        break;
      case 'includeOptional':
        check(
          flag(key),
          Boolean(f.includeOptional) === Boolean(s.includeOptional),
          'yes',
          s.includeOptional ? 'yes' : 'no',
        );
        break;
      case 'includeDrivers':
        check(
          flag(key),
          Boolean(f.includeDrivers) === Boolean(s.includeDrivers),
          'yes',
          s.includeDrivers ? 'yes' : 'no',
        );
        break;
      case 'minAge':
        check(flag(key), f.minAgeDays === s.minAgeDays, f.minAgeDays, s.minAgeDays);
        break;
      case 'maxCycles':
        check(flag(key), config.maxCycles === saved.maxCycles, config.maxCycles, saved.maxCycles);
        break;
      case 'retries':
        check(flag(key), config.retries === saved.retries, config.retries, saved.retries);
        break;
      case 'rebootTimeout':
        check(
          flag(key),
          config.rebootTimeoutMs === saved.rebootTimeoutMs,
          formatMs(config.rebootTimeoutMs),
          formatMs(saved.rebootTimeoutMs),
        );
        break;
      case 'installerBusyTimeout':
        check(
          flag(key),
          Math.round(config.installerBusyTimeoutMs / 1000) === saved.installerBusyTimeoutSeconds,
          formatMs(config.installerBusyTimeoutMs),
          formatMs(saved.installerBusyTimeoutSeconds * 1000),
        );
        break;
      case 'parallel':
      case 'serial':
        if (!modeFlags.has('parallel'))
          check(
            config.parallel === 1 && key === 'serial' ? '--serial' : '--parallel',
            config.parallel === saved.parallel,
            config.parallel,
            saved.parallel,
          );
        modeFlags.add('parallel');
        break;
      case 'offlineCab': {
        const savedCab = meta.offlineCab ?? saved.offlineCabSource;
        const norm = (v: string | null | undefined) => (v == null ? null : /^https?:\/\//i.test(v) ? v : resolve(v));
        check(flag(key), norm(config.offlineCab) === norm(savedCab), config.offlineCab, savedCab);
        break;
      }
      case 'labInprocess':
        check(flag(key), savedInProcess, 'yes', savedInProcess ? 'yes' : 'no');
        break;
    }
  }
  return conflicts;
}

/** Quotes an argument for a POSIX shell or cmd.exe when it needs it. */
function quote(arg: string): string {
  return /^[A-Za-z0-9_.,:/\\@%+=-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\$`])/g, '\\$1')}"`;
}

/**
 * The command that resumes a run, with --state when the state file is not the default one.
 * @example resumeCommand('20261121-0512-7f3a1c', '/var/lib/pl/state.sqlite', false)
 *   // 'patchline run --resume 20261121-0512-7f3a1c --state /var/lib/pl/state.sqlite'
 */
export function resumeCommand(runId: string, stateFile: string, stateIsDefault: boolean): string {
  return `patchline run --resume ${runId}${stateIsDefault ? '' : ` --state ${quote(stateFile)}`}`;
}
