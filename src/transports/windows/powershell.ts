/**
 * `powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 of UTF-16 LE>` lines for the
 * facts a transport asks a target, and parsers for their output.
 *
 * -EncodedCommand takes the script as base64 of its UTF-16 LE bytes (powershell.exe /?), so the
 * line holds only [A-Za-z0-9+/=]: nothing for cmd.exe or the argv parser to mangle. Each script
 * prints ONE line of compact JSON, and sets `$ErrorActionPreference = 'Stop'` so a failure is an
 * exit code 1 with the error on stderr rather than half an answer.
 *
 * Every script takes an optional computer name: without it the script asks the machine it runs
 * on (the ssh transport runs it on the target); with it, it asks that computer over CIM (the
 * windows transport runs it on the connector; CIM uses WinRM by default).
 */
import { usageError } from '../../domain/errors.ts';

export const POWERSHELL_EXE = 'powershell.exe';

/** Base64 of the script's UTF-16 LE bytes. */
export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/** Inverse of encodePowerShell (the lab's interpreter, tests). */
export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** @example powershellArgv('1+1') // ['powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', 'MQArADEA'] */
export function powershellArgv(script: string): readonly string[] {
  return [POWERSHELL_EXE, '-NoProfile', '-NonInteractive', '-EncodedCommand', encodePowerShell(script)];
}

/** A PowerShell single-quoted string literal (only `'` is special inside: doubled). */
export function psString(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201A\u201B]/g, (q) => q + q)}'`;
}

function cimTarget(computer: string | undefined): string {
  if (computer === undefined) return '';
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(computer))
    throw usageError('WINDOWS_ARG_UNQUOTABLE', `not a computer name for CIM: ${JSON.stringify(computer)}`);
  return ` -ComputerName ${psString(computer)}`;
}

const PRELUDE = "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'";

/**
 * The boot id: Win32_OperatingSystem.LastBootUpTime as a FILETIME (changes on every boot; the
 * same value Ansible's reboot plugin compares). Prints `{"bootId":"133…"}`.
 */
export function bootIdScript(computer?: string): string {
  return (
    `${PRELUDE}; $os = Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime${cimTarget(computer)}; ` +
    `@{ bootId = [string]$os.LastBootUpTime.ToFileTime() } | ConvertTo-Json -Compress`
  );
}

/**
 * Component Based Servicing state, read through CIM's StdRegProv so the same script works
 * locally and remotely: `ServicingInProgress` under `…\Component Based Servicing\Interface`
 * (Ansible waits until it is absent, 0 or 1; 2 = busy — undocumented by Microsoft) and whether the
 * `…\Component Based Servicing\RebootPending` key exists. Prints
 * `{"servicingInProgress":null|N,"rebootPending":true|false}`.
 */
export function servicingStateScript(computer?: string): string {
  const cbs = 'SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing';
  return (
    `${PRELUDE}; $hklm = [uint32]2147483650; $cbs = ${psString(cbs)}; ` +
    `$v = Invoke-CimMethod -Namespace root/default -ClassName StdRegProv -MethodName GetDWORDValue${cimTarget(computer)} -Arguments @{ hDefKey = $hklm; sSubKeyName = "$cbs\\Interface"; sValueName = 'ServicingInProgress' }; ` +
    `$k = Invoke-CimMethod -Namespace root/default -ClassName StdRegProv -MethodName EnumKey${cimTarget(computer)} -Arguments @{ hDefKey = $hklm; sSubKeyName = $cbs }; ` +
    `$sip = $null; if ($v.ReturnValue -eq 0) { $sip = [int]$v.uValue }; ` +
    `@{ servicingInProgress = $sip; rebootPending = [bool]($k.sNames -contains 'RebootPending') } | ConvertTo-Json -Compress`
  );
}

/**
 * Reads a file from a byte offset, at most `maxBytes`, sharing it with the writer (the agent keeps
 * it open). Prints `{"size":N,"offset":N,"data":"<base64>"}`, or `{"size":-1}` when the file does
 * not exist (yet). The path is one the reading process can open: a local path on the target, or
 * `\\host\C$\…` from the connector.
 */
export function readFileFromOffsetScript(path: string, offset: number, maxBytes: number): string {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw usageError('WINDOWS_ARG_UNQUOTABLE', `bad file range: offset ${offset}, length ${maxBytes}`);
  }
  return (
    `${PRELUDE}; $p = ${psString(path)}; ` +
    `if (-not (Test-Path -LiteralPath $p -PathType Leaf)) { '{"size":-1}'; exit 0 }; ` +
    `$fs = [System.IO.File]::Open($p, 'Open', 'Read', 'ReadWrite, Delete'); ` +
    `try { $size = $fs.Length; $buf = New-Object byte[] ([Math]::Max(0, [Math]::Min(${maxBytes}, $size - ${offset}))); ` +
    `if ($buf.Length -gt 0) { [void]$fs.Seek(${offset}, 'Begin'); $n = 0; while ($n -lt $buf.Length) { $r = $fs.Read($buf, $n, $buf.Length - $n); if ($r -le 0) { break }; $n += $r }; if ($n -lt $buf.Length) { $buf = $buf[0..($n - 1)] } }; ` +
    `@{ size = $size; offset = ${offset}; data = [Convert]::ToBase64String([byte[]]$buf) } | ConvertTo-Json -Compress } finally { $fs.Dispose() }`
  );
}

/**
 * Is process `pid` still running, and is it our agent? Prints `{"running":false}` or
 * `{"running":true,"commandLine":"…"}` (Win32_Process.CommandLine, to tell a reused PID apart).
 */
export function agentProcessScript(pid: number, computer?: string): string {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw usageError('WINDOWS_ARG_UNQUOTABLE', `not a process id: ${pid}`);
  return (
    `${PRELUDE}; $p = Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId = ${pid}'${cimTarget(computer)}; ` +
    `if ($null -eq $p) { '{"running":false}' } else { @{ running = $true; commandLine = [string]$p.CommandLine } | ConvertTo-Json -Compress }`
  );
}

/**
 * The agent processes started for one request file (the task does not report its child's PID):
 * prints `{"pids":[…]}`. The request path is matched inside the command line, case-insensitively.
 */
export function findAgentScript(requestPath: string, computer?: string): string {
  return (
    `${PRELUDE}; $needle = ${psString(requestPath.toLowerCase())}; ` +
    `$ps = @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'node.exe'"${cimTarget(computer)} | Where-Object { ([string]$_.CommandLine).ToLowerInvariant().Contains($needle) }); ` +
    `@{ pids = @($ps | ForEach-Object { [int]$_.ProcessId }) } | ConvertTo-Json -Compress`
  );
}

// ---------------------------------------------------------------------------------------------
// Parsers

/** A script printed something that is not its one JSON line. */
function badOutput(what: string, stdout: string): Error {
  return new Error(`${what}: unexpected PowerShell output ${JSON.stringify(stdout.slice(0, 200))}`);
}

function lastJsonLine(stdout: string, what: string): Record<string, unknown> {
  const line = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1);
  if (line === undefined) throw badOutput(what, stdout);
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (error) {
    throw Object.assign(badOutput(what, stdout), { cause: error });
  }
  throw badOutput(what, stdout);
}

/** @example parseBootId('{"bootId":"133780000000000000"}\r\n') // '133780000000000000' */
export function parseBootId(stdout: string): string {
  const { bootId } = lastJsonLine(stdout, 'boot id');
  if (typeof bootId !== 'string' || !/^\d+$/.test(bootId)) throw badOutput('boot id', stdout);
  return bootId;
}

export interface ServicingState {
  readonly servicingInProgress: number | null;
  readonly rebootPending: boolean;
  /** Servicing is idle: ServicingInProgress absent, 0 or 1 (Ansible's rule). */
  readonly idle: boolean;
}

/** @example parseServicingState('{"servicingInProgress":2,"rebootPending":true}') // { servicingInProgress: 2, rebootPending: true, idle: false } */
export function parseServicingState(stdout: string): ServicingState {
  const value = lastJsonLine(stdout, 'servicing state');
  const sip = value.servicingInProgress;
  if (
    !(sip === null || sip === undefined || (typeof sip === 'number' && Number.isInteger(sip))) ||
    typeof value.rebootPending !== 'boolean'
  ) {
    throw badOutput('servicing state', stdout);
  }
  const servicingInProgress = typeof sip === 'number' ? sip : null;
  return {
    servicingInProgress,
    rebootPending: value.rebootPending,
    idle: servicingInProgress === null || servicingInProgress <= 1,
  };
}

export interface FileChunk {
  /** The file's size now; -1 when it does not exist. */
  readonly size: number;
  readonly offset: number;
  readonly data: Buffer;
}

export function parseFileChunk(stdout: string): FileChunk {
  const value = lastJsonLine(stdout, 'file chunk');
  if (value.size === -1) return { size: -1, offset: 0, data: Buffer.alloc(0) };
  if (typeof value.size !== 'number' || typeof value.offset !== 'number' || typeof value.data !== 'string')
    throw badOutput('file chunk', stdout);
  return { size: value.size, offset: value.offset, data: Buffer.from(value.data, 'base64') };
}

export interface AgentProcess {
  readonly running: boolean;
  readonly commandLine?: string;
}

export function parseAgentProcess(stdout: string): AgentProcess {
  const value = lastJsonLine(stdout, 'agent process');
  if (typeof value.running !== 'boolean') throw badOutput('agent process', stdout);
  return value.running
    ? { running: true, commandLine: typeof value.commandLine === 'string' ? value.commandLine : '' }
    : { running: false };
}

/** ConvertTo-Json prints a one-element array as a bare number in PS 5.1 when piped; accept both. */
export function parseAgentPids(stdout: string): readonly number[] {
  const { pids } = lastJsonLine(stdout, 'agent pids');
  const list = Array.isArray(pids) ? pids : pids === null || pids === undefined ? [] : [pids];
  if (!list.every((p) => typeof p === 'number' && Number.isInteger(p) && p > 0)) throw badOutput('agent pids', stdout);
  return list as number[];
}

/**
 * Ends process `pid` (Win32_Process.Terminate through CIM). Windows has no SIGTERM across
 * machines: the agent is killed, not asked; WUA's own install, if one runs, goes on in its
 * service. Prints `{"terminated":true|false,"returnValue":N}`.
 */
export function stopProcessScript(pid: number, computer?: string): string {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw usageError('WINDOWS_ARG_UNQUOTABLE', `not a process id: ${pid}`);
  return (
    `${PRELUDE}; $p = Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId = ${pid}'${cimTarget(computer)}; ` +
    `if ($null -eq $p) { '{"terminated":false,"returnValue":-1}' } else { $r = Invoke-CimMethod -InputObject $p -MethodName Terminate; @{ terminated = ($r.ReturnValue -eq 0); returnValue = [int]$r.ReturnValue } | ConvertTo-Json -Compress }`
  );
}
