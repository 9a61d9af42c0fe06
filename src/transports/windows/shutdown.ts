/**
 * `shutdown.exe` for the reboots the engine does itself (the agent normally reboots its host).
 * Exit codes from Ansible's reboot plugin (reference/windows-update-agent.md §2.2): 1190 = a
 * shutdown is already scheduled (abort it with `shutdown /a` and retry), 1115 = a shutdown is in
 * progress (wait: it is probably a reboot). Reason `p:2:17` = "Operating System: Hot fix (Planned)"
 * in shutdown's reason table, so the event log says why the server restarted.
 */
import { usageError } from '../../domain/errors.ts';

/** Longest comment shutdown accepts (/c: "Maximum of 512 characters allowed"). */
const MAX_COMMENT_CHARS = 512;

/**
 * @example shutdownRebootArgv('Patchline run r7: installing updates')
 *   // ['shutdown.exe', '/r', '/t', '0', '/d', 'p:2:17', '/c', 'Patchline run r7: installing updates']
 */
export function shutdownRebootArgv(comment: string, computer?: string): readonly string[] {
  if (comment.length > MAX_COMMENT_CHARS)
    throw usageError('WINDOWS_ARG_UNQUOTABLE', `a shutdown comment is limited to ${MAX_COMMENT_CHARS} characters`);
  const target = computer === undefined ? [] : ['/m', `\\\\${computer}`];
  return ['shutdown.exe', '/r', ...target, '/t', '0', '/d', 'p:2:17', '/c', comment];
}

/** Cancels a scheduled shutdown (before retrying after exit code 1190). */
export function shutdownAbortArgv(computer?: string): readonly string[] {
  return ['shutdown.exe', '/a', ...(computer === undefined ? [] : ['/m', `\\\\${computer}`])];
}

export type ShutdownOutcome = 'started' | 'already-scheduled' | 'in-progress' | 'failed';

/** What shutdown's exit code means for the caller. */
export function classifyShutdownExit(exitCode: number): ShutdownOutcome {
  if (exitCode === 0) return 'started';
  if (exitCode === 1190) return 'already-scheduled';
  if (exitCode === 1115) return 'in-progress';
  return 'failed';
}
