/**
 * The catalogue of user-facing errors: each has a stable code, a message that says what to do,
 * and the process exit code a command ends with when the error reaches the top.
 * docs/errors.md lists every code. Throw `new PatchlineError('USAGE', '…')`; attach `cause`.
 */

/** Exit codes of `patchline run` (README "Exit codes"); other commands use 0, 1, 64 and 70. */
export const EXIT = {
  OK: 0,
  /** A command other than `run` failed at its task (e.g. a catalog sync rejected a cab). */
  FAILED: 1,
  UPDATE_FAILED: 2,
  UNREACHABLE: 3,
  DEADLINE: 4,
  CANCELLED: 5,
  USAGE: 64,
  INTERNAL: 70,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface ErrorDetails {
  readonly exitCode?: ExitCode;
  readonly cause?: unknown;
  /** Ids that locate the error: run, host, update, file, url … */
  readonly context?: Readonly<Record<string, string | number>>;
}

export class PatchlineError extends Error {
  override readonly name = 'PatchlineError';
  readonly exitCode: ExitCode;
  readonly context: Readonly<Record<string, string | number>>;

  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.exitCode = details.exitCode ?? EXIT.FAILED;
    this.context = details.context ?? {};
  }
}

/** A usage error: bad option, unreadable list, invalid scenario, unknown host. Exit 64, nothing started. */
export function usageError(
  code: string,
  message: string,
  details: Omit<ErrorDetails, 'exitCode'> = {},
): PatchlineError {
  return new PatchlineError(code, message, { ...details, exitCode: EXIT.USAGE });
}
