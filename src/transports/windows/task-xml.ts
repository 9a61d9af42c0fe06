/**
 * The one-shot Task Scheduler task that starts the agent on a target (DESIGN.md §5 "launch").
 *
 * Schema: Task Scheduler schema 1.3 (namespace http://schemas.microsoft.com/windows/2004/02/mit/task;
 * Windows 7 / Server 2008 R2 and later): the version the XSD Microsoft publishes fixes ("Task
 * Scheduler Schema" page). Choices, each from Microsoft's schema pages
 * (learn.microsoft.com/windows/win32/taskschd, "settingsType Complex Type" etc.):
 *  - NO <Triggers>: the connector starts the task with `schtasks /Run` at once. A wall-clock start
 *    (`/SC ONCE /ST`, a TimeTrigger StartBoundary) is what broke the seed system (locale dates,
 *    "+1 minute", time zones).
 *  - Principal S-1-5-18 (LocalSystem) and RunLevel HighestAvailable, no LogonType (the published
 *    XSD's logonType has no value for a service account; Windows' own exports of SYSTEM tasks
 *    leave it out, and `/RU SYSTEM` says the same): WUA
 *    refuses remote logon tokens, so the agent must run locally as SYSTEM (DESIGN.md §4).
 *  - DisallowStartIfOnBatteries and StopIfGoingOnBatteries false (both default true: a server on a
 *    UPS that reports battery would otherwise never start or be killed mid-install).
 *  - ExecutionTimeLimit explicit (the default is 72 hours), MultipleInstancesPolicy IgnoreNew (a
 *    second /Run of the same task never starts a second agent), AllowStartOnDemand true (needed by
 *    /Run), StartWhenAvailable true, RunOnlyIfIdle false, Enabled true.
 * `encodeTaskXml` gives the bytes schtasks reads: UTF-16 LE with a byte-order mark, matching the
 * `encoding="UTF-16"` declaration.
 */
import { usageError } from '../../domain/errors.ts';

export const TASK_SCHEMA_NAMESPACE = 'http://schemas.microsoft.com/windows/2004/02/mit/task';
/** LocalSystem's well-known SID. */
export const LOCAL_SYSTEM_SID = 'S-1-5-18';
/** Longer than any cycle the engine allows (installs of a Server 2016 CU take up to ~2 h) but not the 72 h default. */
export const DEFAULT_EXECUTION_TIME_LIMIT_MINUTES = 4 * 60;

export interface AgentTaskSpec {
  /** The program: the node.exe of the client folder (a local path or a UNC path on the share). */
  readonly command: string;
  /** The program's arguments as one CreateProcess line (see `argvToCommandLine`). */
  readonly arguments: string;
  /** Working directory on the target (the client folder). */
  readonly workingDirectory?: string;
  /** Shown in the Task Scheduler UI while the task exists (run id, host, cycle). */
  readonly description: string;
  readonly executionTimeLimitMinutes?: number;
}

/** Characters XML 1.0 cannot hold at all (control characters other than tab, CR, LF). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function xmlText(value: string, field: string): string {
  if (XML_FORBIDDEN.test(value))
    throw usageError(
      'TASK_XML_INVALID_VALUE',
      `the task's ${field} holds a control character the task XML cannot carry: ${JSON.stringify(value)}`,
    );
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** ISO 8601 duration as the schema's `duration` type wants it. @example isoDuration(90) // 'PT1H30M' */
export function isoDuration(minutes: number): string {
  if (!Number.isInteger(minutes) || minutes <= 0)
    throw usageError(
      'TASK_XML_INVALID_VALUE',
      `an execution time limit must be a positive whole number of minutes, got ${minutes}`,
    );
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return `PT${hours > 0 ? `${hours}H` : ''}${rest > 0 ? `${rest}M` : ''}`;
}

/**
 * The task definition, as text (the XML declaration says UTF-16: write it with `encodeTaskXml`).
 *
 * @example
 *   buildAgentTaskXml({ command: '\\\\files01\\patchline\\0.1.0\\node.exe',
 *     arguments: '"\\\\files01\\patchline\\0.1.0\\patchline.mjs" agent cycle --request C:\\Windows\\Patchline\\r.json',
 *     description: 'Patchline run 7 host web01 cycle 1' })
 */
export function buildAgentTaskXml(spec: AgentTaskSpec): string {
  if (spec.command.trim() === '') throw usageError('TASK_XML_INVALID_VALUE', 'the task needs a program to run');
  const limit = isoDuration(spec.executionTimeLimitMinutes ?? DEFAULT_EXECUTION_TIME_LIMIT_MINUTES);
  const lines = [
    '<?xml version="1.0" encoding="UTF-16"?>',
    `<Task version="1.3" xmlns="${TASK_SCHEMA_NAMESPACE}">`,
    '  <RegistrationInfo>',
    '    <Author>Patchline</Author>',
    `    <Description>${xmlText(spec.description, 'description')}</Description>`,
    '  </RegistrationInfo>',
    '  <Principals>',
    '    <Principal id="Author">',
    `      <UserId>${LOCAL_SYSTEM_SID}</UserId>`,
    '      <RunLevel>HighestAvailable</RunLevel>',
    '    </Principal>',
    '  </Principals>',
    '  <Settings>',
    '    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>',
    '    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>',
    '    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>',
    '    <AllowHardTerminate>true</AllowHardTerminate>',
    '    <StartWhenAvailable>true</StartWhenAvailable>',
    '    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>',
    '    <AllowStartOnDemand>true</AllowStartOnDemand>',
    '    <Enabled>true</Enabled>',
    '    <Hidden>false</Hidden>',
    '    <RunOnlyIfIdle>false</RunOnlyIfIdle>',
    '    <WakeToRun>false</WakeToRun>',
    `    <ExecutionTimeLimit>${limit}</ExecutionTimeLimit>`,
    '    <Priority>7</Priority>',
    '  </Settings>',
    '  <Actions Context="Author">',
    '    <Exec>',
    `      <Command>${xmlText(spec.command, 'command')}</Command>`,
    ...(spec.arguments === '' ? [] : [`      <Arguments>${xmlText(spec.arguments, 'arguments')}</Arguments>`]),
    ...(spec.workingDirectory === undefined
      ? []
      : [`      <WorkingDirectory>${xmlText(spec.workingDirectory, 'working directory')}</WorkingDirectory>`]),
    '    </Exec>',
    '  </Actions>',
    '</Task>',
  ];
  // CRLF: what Windows' own exports use; schtasks accepts either.
  return `${lines.join('\r\n')}\r\n`;
}

/** The bytes of the XML file schtasks /Create /XML reads: UTF-16 LE with a BOM. */
export function encodeTaskXml(xml: string): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]);
}

/** Inverse of encodeTaskXml (tests, the lab's interpreter): refuses bytes without the UTF-16 LE BOM. */
export function decodeTaskXml(bytes: Uint8Array): string {
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xfe)
    throw usageError('TASK_XML_INVALID_VALUE', 'the task XML file does not start with a UTF-16 LE byte-order mark');
  return Buffer.from(bytes.buffer, bytes.byteOffset + 2, bytes.length - 2).toString('utf16le');
}
