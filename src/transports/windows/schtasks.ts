/**
 * schtasks.exe command lines (as argv arrays) and the parsers for what schtasks prints.
 *
 * Every builder takes an optional `server`: with it, the `/S host` variant the `windows` transport
 * runs on the connector (schtasks talks to the target's Task Scheduler over RPC); without it, the
 * local form the `ssh` transport runs on the target itself. Turn an argv into a line with
 * `argvToCmdLine` (cmd.exe) or run it with execFile (no shell). Syntax: MicrosoftDocs
 * windowsserverdocs `administration/windows-commands/schtasks-*.md`.
 *
 * Never `/SC ONCE /ST …`: the task has no trigger and is started with `/Run` (task-xml.ts).
 */
import { usageError } from '../../domain/errors.ts';

/** The Task Scheduler folder our tasks live in (one task per host cycle, deleted once started). */
export const TASK_FOLDER = '\\Patchline\\';

/** Characters the Task Scheduler refuses in a task name (the folder separator aside). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const TASK_NAME_FORBIDDEN = /[\\/:*?"<>|\u0000-\u001f]/g;

/**
 * The task's full name for one cycle: `\Patchline\<runId>-<host>-c<cycle>`, forbidden characters
 * replaced by `_`.
 *
 * @example agentTaskName({ runId: 'r7', host: 'web01', cycle: 2 }) // '\\Patchline\\r7-web01-c2'
 */
export function agentTaskName(request: {
  readonly runId: string;
  readonly host: string;
  readonly cycle: number;
}): string {
  const leaf = `${request.runId}-${request.host}-c${request.cycle}`.replace(TASK_NAME_FORBIDDEN, '_');
  return `${TASK_FOLDER}${leaf}`;
}

function remote(server: string | undefined): string[] {
  if (server === undefined) return [];
  if (server.trim() === '' || /[\s"]/.test(server))
    throw usageError('WINDOWS_ARG_UNQUOTABLE', `not a host name for schtasks /S: ${JSON.stringify(server)}`);
  return ['/S', server];
}

/**
 * Registers the task from its XML file (UTF-16, see encodeTaskXml), replacing one of the same name.
 * `/RU SYSTEM` repeats the XML's principal: schtasks documents /RU as combinable with /XML.
 *
 * @example schtasksCreate('\\Patchline\\r7-web01-c1', 'C:\\Windows\\Temp\\t.xml')
 *   // ['schtasks.exe', '/Create', '/TN', '\\Patchline\\r7-web01-c1', '/XML', 'C:\\Windows\\Temp\\t.xml', '/RU', 'SYSTEM', '/F']
 */
export function schtasksCreate(taskName: string, xmlFile: string, server?: string): readonly string[] {
  return ['schtasks.exe', '/Create', ...remote(server), '/TN', taskName, '/XML', xmlFile, '/RU', 'SYSTEM', '/F'];
}

/** Starts the task now (its only way to start: it has no trigger). */
export function schtasksRun(taskName: string, server?: string): readonly string[] {
  return ['schtasks.exe', '/Run', ...remote(server), '/TN', taskName];
}

/** The registered definition, as XML (to confirm what the scheduler holds: no trigger, SYSTEM). */
export function schtasksQueryXml(taskName: string, server?: string): readonly string[] {
  return ['schtasks.exe', '/Query', ...remote(server), '/TN', taskName, '/XML'];
}

/**
 * Status and last result (the definition XML holds neither): verbose CSV without the header, so
 * the columns are read by position, which does not depend on the display language.
 */
export function schtasksQueryStatus(taskName: string, server?: string): readonly string[] {
  return ['schtasks.exe', '/Query', ...remote(server), '/TN', taskName, '/V', '/FO', 'CSV', '/NH'];
}

/** Deletes the task without asking. */
export function schtasksDelete(taskName: string, server?: string): readonly string[] {
  return ['schtasks.exe', '/Delete', ...remote(server), '/TN', taskName, '/F'];
}

// ---------------------------------------------------------------------------------------------
// Parsing what schtasks prints

export const TASK_STATES = ['ready', 'running', 'queued', 'disabled', 'unknown'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export interface TaskStatus {
  readonly taskName: string;
  readonly state: TaskState;
  /** The Status column as printed (kept for messages; other display languages print other words). */
  readonly statusText: string;
  /** "Last Result" as an HRESULT text (`0x00041303` = has not run yet); null if not a number. */
  readonly lastResult: string | null;
}

/** Verbose CSV column positions (schtasks /Query /V /FO CSV): HostName, TaskName, Next Run Time, Status, Logon Mode, Last Run Time, Last Result, … */
const CSV_COLUMN = { taskName: 1, status: 3, lastResult: 6 } as const;

const STATUS_WORDS: Readonly<Record<string, TaskState>> = {
  ready: 'ready',
  running: 'running',
  queued: 'queued',
  disabled: 'disabled',
};

/** Splits one CSV line as schtasks writes it (every field quoted, `""` for a quote). */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else {
          value += line[i++];
        }
      }
      fields.push(value);
      if (line[i] === ',') i++;
      else break;
    } else {
      const end = line.indexOf(',', i);
      fields.push(line.slice(i, end === -1 ? line.length : end));
      if (end === -1) break;
      i = end + 1;
    }
  }
  return fields;
}

/** HRESULT text of a 32-bit value printed as a signed or unsigned decimal. */
export function hresultText(value: number): string {
  return `0x${(value >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

/**
 * Reads `schtasks /Query /TN X /V /FO CSV /NH` output. Returns null when no row names the task.
 *
 * @example parseTaskStatus('"WEB01","\\Patchline\\r7-web01-c1","N/A","Running","Interactive/Background","12/5/2026 9:01:02 PM","267009",…')
 *   // { taskName: '\\Patchline\\r7-web01-c1', state: 'running', statusText: 'Running', lastResult: '0x00041301' }
 */
export function parseTaskStatus(stdout: string, taskName: string): TaskStatus | null {
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const fields = parseCsvLine(line);
    if ((fields[CSV_COLUMN.taskName] ?? '').toLowerCase() !== taskName.toLowerCase()) continue;
    const statusText = fields[CSV_COLUMN.status] ?? '';
    const result = (fields[CSV_COLUMN.lastResult] ?? '').trim();
    return {
      taskName: fields[CSV_COLUMN.taskName]!,
      state: STATUS_WORDS[statusText.trim().toLowerCase()] ?? 'unknown',
      statusText,
      lastResult: /^-?\d+$/.test(result) ? hresultText(Number(result)) : null,
    };
  }
  return null;
}

/**
 * What schtasks prints after "ERROR: " is the system message of the HRESULT (FormatMessage).
 * English texts of the ones a connector meets; another display language falls back to the text.
 */
const SCHTASKS_ERRORS: ReadonlyArray<readonly [RegExp, string, SchtasksErrorKind]> = [
  [/^Access is denied\.?$/i, '0x80070005', 'access-denied'],
  [/^The user name or password is incorrect\.?$/i, '0x8007052E', 'access-denied'],
  [/^Logon failure: unknown user name or bad password\.?$/i, '0x8007052E', 'access-denied'],
  [/^The system cannot find the file specified\.?$/i, '0x80070002', 'not-found'],
  [/^The system cannot find the path specified\.?$/i, '0x80070003', 'not-found'],
  [/^The specified task name ".*" does not exist in the system\.?$/i, '0x80070002', 'not-found'],
  [/^The network path was not found\.?$/i, '0x80070035', 'unreachable'],
  [/^The RPC server is unavailable\.?$/i, '0x800706BA', 'unreachable'],
  [/^The remote procedure call failed\.?$/i, '0x800706BE', 'unreachable'],
  [/^The task XML is malformed\.?$/i, '0x8004131A', 'bad-task'],
  [/^The task XML contains a value which is incorrectly formatted or out of range\.?$/i, '0x80041318', 'bad-task'],
  [/^The task XML is missing a required element or attribute\.?$/i, '0x80041319', 'bad-task'],
  [/^The task XML contains an unexpected node\.?$/i, '0x80041316', 'bad-task'],
  [/^An instance of this task is already running\.?$/i, '0x8004131F', 'already-running'],
  [/^The task is disabled\.?$/i, '0x80041326', 'bad-task'],
  [/^The Task Scheduler service is not running\.?$/i, '0x80041315', 'scheduler-unavailable'],
];

export type SchtasksErrorKind =
  'access-denied' | 'not-found' | 'unreachable' | 'bad-task' | 'already-running' | 'scheduler-unavailable' | 'other';

export interface SchtasksError {
  /** HRESULT text when the message is one we know (English), else null. */
  readonly hresult: string | null;
  readonly kind: SchtasksErrorKind;
  /** The scheduler's own words, all "ERROR:" lines joined (with the XML position line, if any). */
  readonly message: string;
}

/**
 * Reads a failed schtasks run: its exit code and stderr (schtasks writes "ERROR: …" to stderr;
 * XML errors add a "(line,column):Element:value" line).
 *
 * @example parseSchtasksError('ERROR: Access is denied.\r\n') // { hresult: '0x80070005', kind: 'access-denied', message: 'Access is denied.' }
 */
export function parseSchtasksError(stderr: string): SchtasksError {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const errorLines = lines.filter((l) => /^ERROR:/i.test(l)).map((l) => l.replace(/^ERROR:\s*/i, ''));
  const first = errorLines[0] ?? lines[0] ?? '';
  const message = lines.map((l) => l.replace(/^ERROR:\s*/i, '')).join(' ');
  for (const [pattern, hresult, kind] of SCHTASKS_ERRORS) {
    if (pattern.test(first)) return { hresult, kind, message: message || first };
  }
  return { hresult: null, kind: 'other', message: message || '(schtasks printed nothing)' };
}

/** `SUCCESS: …` is what schtasks prints on stdout when it did what it was asked. */
export function isSchtasksSuccess(stdout: string): boolean {
  return /^SUCCESS:/im.test(stdout);
}

export interface RegisteredTask {
  /** Any trigger at all (ours has none: a trigger could start the agent a second time). */
  readonly hasTriggers: boolean;
  readonly userId: string | null;
  readonly runLevel: string | null;
  readonly command: string | null;
  readonly arguments: string | null;
}

const xmlUnescape = (s: string): string =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
const element = (xml: string, name: string): string | null => {
  const m = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? xmlUnescape(m[1]!.trim()) : null;
};

/**
 * Reads what `schtasks /Query /TN X /XML` prints — the definition the scheduler holds (no state:
 * that comes from schtasks /Query /V /FO CSV) — to confirm the task registered as we wrote it.
 *
 * @example parseRegisteredTask(stdout).hasTriggers // false for the agent task
 */
export function parseRegisteredTask(stdout: string): RegisteredTask {
  if (!/<Task[\s>]/.test(stdout))
    throw new Error(`schtasks /Query /XML printed no task definition: ${JSON.stringify(stdout.slice(0, 200))}`);
  const triggers = element(stdout, 'Triggers');
  return {
    hasTriggers: triggers !== null && /<\w+Trigger[\s>/]/.test(triggers),
    userId: element(stdout, 'UserId'),
    runLevel: element(stdout, 'RunLevel'),
    command: element(stdout, 'Command'),
    arguments: element(stdout, 'Arguments'),
  };
}

/**
 * Last Result values that are no failure while a launch is being confirmed: running, has not run
 * yet, ready, queued, and 0 (an agent that already ended well).
 */
const NOT_A_FAILURE = new Set(['0x00041301', '0x00041303', '0x00041300', '0x00041325', '0x00000000']);

/**
 * What one `schtasks /Query /TN X /V /FO CSV /NH` says about a task just started with /Run:
 * - `waiting`: the scheduler has it, running or about to: look again (or at the agent's log);
 * - `failed`: it ended with a failing Last Result before any agent ran;
 * - `lost`: the scheduler says there is no such task (or refuses us): nothing will run;
 * - `unanswered`: the query itself failed (the RPC failed, the service is busy, an answer we cannot
 *   read). That says nothing about the task, which may well be running: ask again within the
 *   launch's bound; it is no reason to give the host up.
 *
 * @example judgeStartQuery({ code: 1, stdout: '', stderr: 'ERROR: The remote procedure call failed.\r\n' }, name).kind // 'unanswered'
 */
export type StartQueryVerdict =
  | { readonly kind: 'waiting'; readonly status: TaskStatus }
  | { readonly kind: 'failed'; readonly hresult: string; readonly status: TaskStatus }
  | { readonly kind: 'lost'; readonly hresult: string; readonly message: string }
  | { readonly kind: 'unanswered'; readonly message: string };

export function judgeStartQuery(
  result: { readonly code: number | null; readonly stdout: string; readonly stderr: string },
  taskName: string,
): StartQueryVerdict {
  if (result.code === 0) {
    const status = parseTaskStatus(result.stdout, taskName);
    if (status === null) return { kind: 'unanswered', message: `schtasks /Query printed no row for ${taskName}` };
    if (status.state !== 'running' && status.lastResult !== null && !NOT_A_FAILURE.has(status.lastResult))
      return { kind: 'failed', hresult: status.lastResult, status };
    return { kind: 'waiting', status };
  }
  const error = parseSchtasksError(result.stderr);
  if ((error.kind === 'not-found' || error.kind === 'access-denied') && error.hresult !== null)
    return { kind: 'lost', hresult: error.hresult, message: error.message };
  return { kind: 'unanswered', message: `${error.message} (exit ${result.code ?? 'none'})` };
}
