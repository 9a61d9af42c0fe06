/**
 * The few Windows command lines only the SSH transport sends (the shared ones — schtasks, boot id,
 * servicing, shutdown, agent process — are in src/transports/windows/). Pure builders and parsers,
 * tested as text; the lab's interpreter recognises a script by rebuilding it from its parameters.
 */
import { psString } from '../windows/powershell.ts';

const PRELUDE = "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'";

/**
 * sha256 of every file directly in `dir` (Get-FileHash), to copy only what differs. Prints
 * `{"files":{"name":"hex",…}}`; `{"files":{}}` when the folder does not exist.
 */
export function fileDigestsScript(dir: string): string {
  return (
    `${PRELUDE}; $d = ${psString(dir)}; $h = @{}; ` +
    'if (Test-Path -LiteralPath $d -PathType Container) { Get-ChildItem -LiteralPath $d -File | ForEach-Object { $h[$_.Name] = (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash.ToLowerInvariant() } }; ' +
    '@{ files = $h } | ConvertTo-Json -Compress'
  );
}

/** Inverse of fileDigestsScript: its folder, or null when `script` is not one. */
export function matchFileDigestsScript(script: string): string | null {
  const m =
    /^\$ErrorActionPreference = 'Stop'; \$ProgressPreference = 'SilentlyContinue'; \$d = ('(?:[^']|'')*'); /.exec(
      script,
    );
  if (!m) return null;
  const dir = m[1]!.slice(1, -1).replace(/''/g, "'");
  return fileDigestsScript(dir) === script ? dir : null;
}

export function parseFileDigests(stdout: string): Readonly<Record<string, string>> {
  const line =
    stdout
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .at(-1) ?? '';
  const value = JSON.parse(line) as { files?: unknown };
  if (typeof value.files !== 'object' || value.files === null || Array.isArray(value.files))
    throw new Error(`file digests: unexpected PowerShell output ${JSON.stringify(stdout.slice(0, 200))}`);
  return value.files as Record<string, string>;
}

/**
 * Can the target open a TCP connection to the connector's callback (host:port) within
 * `timeoutMs`? Prints `{"reachable":true|false}`. Decides how a cycle's events reach us.
 */
export function tcpReachableScript(host: string, port: number, timeoutMs: number): string {
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new Error(`bad callback address ${host}:${port} / ${timeoutMs} ms`);
  return (
    `${PRELUDE}; $c = New-Object System.Net.Sockets.TcpClient; $ok = $false; ` +
    `try { $ok = $c.ConnectAsync(${psString(host)}, ${port}).Wait(${timeoutMs}) } catch { $ok = $false } finally { $c.Dispose() }; ` +
    '@{ reachable = [bool]$ok } | ConvertTo-Json -Compress'
  );
}

/** Inverse of tcpReachableScript. */
export function matchTcpReachableScript(script: string): { host: string; port: number; timeoutMs: number } | null {
  const m = /ConnectAsync\(('(?:[^']|'')*'), (\d+)\)\.Wait\((\d+)\)/.exec(script);
  if (!m) return null;
  const parsed = { host: m[1]!.slice(1, -1).replace(/''/g, "'"), port: Number(m[2]), timeoutMs: Number(m[3]) };
  return tcpReachableScript(parsed.host, parsed.port, parsed.timeoutMs) === script ? parsed : null;
}

export function parseReachable(stdout: string): boolean {
  const line =
    stdout
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .at(-1) ?? '';
  const value = JSON.parse(line) as { reachable?: unknown };
  if (typeof value.reachable !== 'boolean')
    throw new Error(`reachability: unexpected PowerShell output ${JSON.stringify(stdout.slice(0, 200))}`);
  return value.reachable;
}

/**
 * Asks the agent to stop: `taskkill /PID n /T` without /F (a close request the agent treats as
 * an abort). Unverified on Windows: a console process under SYSTEM may only stop with /F.
 */
export function taskkillArgv(pid: number): readonly string[] {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`not a process id: ${pid}`);
  return ['taskkill.exe', '/PID', String(pid), '/T'];
}

/** Windows path → the path Windows' OpenSSH SFTP server shows: `C:\ProgramData\x` → `/C:/ProgramData/x`. */
export function sftpPath(windowsPath: string): string {
  if (!/^[A-Za-z]:\\/.test(windowsPath)) throw new Error(`not a local Windows path: ${windowsPath}`);
  return `/${windowsPath.replace(/\\/g, '/')}`;
}
