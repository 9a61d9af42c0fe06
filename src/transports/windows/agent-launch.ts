/**
 * What the task runs: the client folder's node.exe with the agent bundle, for one cycle request.
 * The client folder (laid out by `patchline client pack`, see src/agent/manifest.ts) is either on
 * a share (`\\files01\patchline\0.1.0`) or copied to `%ProgramData%\Patchline\<version>`.
 */
import { win32 } from 'node:path';
import { argvToCommandLine } from './cmd-line.ts';
import { buildAgentTaskXml, type AgentTaskSpec } from './task-xml.ts';

/** File names inside a client folder (the pack writes them, the agent checks them). */
export const CLIENT_FILES = {
  node: 'node.exe',
  bundle: 'patchline.mjs',
  provider: 'wua.ps1',
  manifest: 'manifest.json',
} as const;

/** Where a transport copies the client on a target when no share is used. */
export function localClientDir(version: string): string {
  return win32.join('C:\\ProgramData\\Patchline', version);
}

/** Where the connector writes cycle request files on a target. */
export const TARGET_REQUEST_DIR = 'C:\\ProgramData\\Patchline\\requests';
/** Where the agent leaves a log nobody took (its default PATCHLINE_LOG_DIR on Windows). */
export const TARGET_LOG_DIR = 'C:\\ProgramData\\Patchline\\logs';

export interface AgentLaunchInput {
  /** The client folder as the TARGET sees it (UNC or local path). */
  readonly clientDir: string;
  /** The cycle request file as the target sees it. */
  readonly requestPath: string;
  readonly description: string;
  readonly executionTimeLimitMinutes?: number;
}

/**
 * The task's program, arguments and working directory.
 *
 * @example agentTaskSpec({ clientDir: '\\\\files01\\patchline\\0.1.0', requestPath: 'C:\\ProgramData\\Patchline\\requests\\r7-web01-1.json', description: 'x' })
 *   // { command: '\\\\files01\\patchline\\0.1.0\\node.exe',
 *   //   arguments: '\\\\files01\\patchline\\0.1.0\\patchline.mjs agent cycle --request C:\\ProgramData\\Patchline\\requests\\r7-web01-1.json', … }
 */
export function agentTaskSpec(input: AgentLaunchInput): AgentTaskSpec {
  const command = win32.join(input.clientDir, CLIENT_FILES.node);
  const args = [win32.join(input.clientDir, CLIENT_FILES.bundle), 'agent', 'cycle', '--request', input.requestPath];
  return {
    command,
    arguments: argvToCommandLine(args),
    workingDirectory: input.clientDir,
    description: input.description,
    ...(input.executionTimeLimitMinutes === undefined
      ? {}
      : { executionTimeLimitMinutes: input.executionTimeLimitMinutes }),
  };
}

/** The task XML for one cycle (text; write it with encodeTaskXml). */
export function agentTaskXml(input: AgentLaunchInput): string {
  return buildAgentTaskXml(agentTaskSpec(input));
}

/** The request file's name on the target for one cycle. */
export function requestFileName(request: {
  readonly runId: string;
  readonly host: string;
  readonly cycle: number;
}): string {
  return `${request.runId}-${request.host}-${request.cycle}.json`.replace(/[\\/:*?"<>|\s]/g, '_');
}
