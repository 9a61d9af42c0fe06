/**
 * The run report (what `patchline run` prints as JSON and what a scheduler reads) and the exit-code
 * precedence. Pure: built from the hosts' cycle states; HRESULT names come from a function passed in.
 *
 * Exit codes, highest precedence first: 5 cancelled, 4 deadline reached, 3 some host unreachable /
 * not back within the reboot timeout / access denied, 2 some update failed (or, in install mode, a host was left
 * with work it could not do: pending), 0 every target done.
 */
import type { Mode } from './agent-log.ts';
import { EXIT, type ExitCode } from './errors.ts';
import {
  HOST_OUTCOMES,
  type AttemptResult,
  type HostOutcome,
  type HostState,
  type UpdateResult,
  countedCycles,
  updateName,
} from './cycle.ts';

export const RUN_OUTCOMES = ['succeeded', 'failed', 'unreachable', 'deadline-reached', 'cancelled', 'running'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

export interface UpdateReport {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly result: UpdateResult;
  readonly hresult: string | null;
  /** What went wrong, in words: the HRESULT's name and meaning, a loop, a skip reason. */
  readonly message: string | null;
  readonly attempts: number;
  /** Every attempt with its HRESULT, oldest first (a retried update keeps each try). */
  readonly attemptResults: readonly AttemptResult[];
}

export interface HostReport {
  readonly name: string;
  /** `pending` also for a host still in progress when the report was made. */
  readonly outcome: HostOutcome;
  /** Cycles that ran to an end (those that count against --max-cycles). */
  readonly cycles: number;
  /** Cycles cut short by a cancel, the deadline or a crash of the connector; resumed, not counted. */
  readonly interruptedCycles: number;
  readonly reboots: number;
  readonly message: string | null;
  readonly updates: readonly UpdateReport[];
}

export interface RunReport {
  readonly run: {
    readonly id: string;
    readonly outcome: RunOutcome;
    readonly startedAt: string;
    readonly finishedAt: string | null;
    readonly exitCode: ExitCode | null;
  };
  readonly hosts: readonly HostReport[];
}

/** Name and meaning of an HRESULT ("WU_E_UH_INSTALLERFAILURE", "…"), or null when unknown. */
export type DescribeHResult = (hresult: string) => { readonly name: string | null; readonly meaning: string } | null;

/**
 * The exit code of a run from its hosts' outcomes (precedence: 5, 4, 3, 2, 0).
 *
 * @example exitCodeFor(['compliant', 'failed', 'unreachable'], 'install') // 3
 */
export function exitCodeFor(outcomes: readonly HostOutcome[], mode: Mode): ExitCode {
  if (outcomes.includes('cancelled')) return EXIT.CANCELLED;
  if (outcomes.includes('timed-out')) return EXIT.DEADLINE;
  if (outcomes.includes('unreachable') || outcomes.includes('access-denied')) return EXIT.UNREACHABLE;
  if (outcomes.includes('failed')) return EXIT.UPDATE_FAILED;
  // scan/download: pending means "matching updates found", which is the result asked for.
  if (mode === 'install' && outcomes.includes('pending')) return EXIT.UPDATE_FAILED;
  return EXIT.OK;
}

export function runOutcomeFor(code: ExitCode): RunOutcome {
  switch (code) {
    case EXIT.CANCELLED:
      return 'cancelled';
    case EXIT.DEADLINE:
      return 'deadline-reached';
    case EXIT.UNREACHABLE:
      return 'unreachable';
    case EXIT.OK:
      return 'succeeded';
    default:
      return 'failed';
  }
}

const RESULT_ORDER: Record<UpdateResult, number> = {
  failed: 0,
  blocked: 1,
  installed: 2,
  downloaded: 3,
  available: 4,
  skipped: 5,
};

/** One host's part of the report. A host not at an end yet is reported `pending`. */
export function hostReport(state: HostState, describe: DescribeHResult): HostReport {
  const updates = Object.values(state.updates)
    .map((u): UpdateReport => ({
      updateId: u.updateId,
      kb: u.kb,
      title: u.title,
      result: u.result,
      hresult: u.hresult,
      attempts: u.attempts,
      attemptResults: u.attemptResults ?? [],
      message:
        u.message ?? (u.result === 'failed' ? failureMessage(updateName(u), u.hresult, u.attempts, describe) : null),
    }))
    .sort((a, b) => RESULT_ORDER[a.result] - RESULT_ORDER[b.result] || a.title.localeCompare(b.title));
  const outcome: HostOutcome = HOST_OUTCOMES.find((o) => o === state.phase) ?? 'pending';
  return {
    name: state.host,
    outcome,
    cycles: countedCycles(state),
    interruptedCycles: state.interruptedCycles ?? 0,
    reboots: state.reboots,
    message: state.message,
    updates,
  };
}

/** "KB5044444 failed with 0x80242016 (WU_E_UH_POSTREBOOTUNSUCCESSFUL: …) after 2 attempt(s)." */
export function failureMessage(
  name: string,
  hresult: string | null,
  attempts: number,
  describe: DescribeHResult,
): string {
  if (!hresult) return `${name} failed without an HRESULT after ${attempts} attempt(s).`;
  const d = describe(hresult);
  const words = d ? ` (${d.name ? `${d.name}: ` : ''}${d.meaning.replace(/\.$/, '')})` : '';
  return `${name} failed with ${hresult}${words} after ${attempts} attempt(s).`;
}

export function buildReport(input: {
  readonly runId: string;
  readonly mode: Mode;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly hosts: readonly HostState[];
  readonly describe: DescribeHResult;
}): RunReport {
  const hosts = input.hosts.map((h) => hostReport(h, input.describe));
  const done = input.finishedAt !== null;
  const exitCode = done
    ? exitCodeFor(
        hosts.map((h) => h.outcome),
        input.mode,
      )
    : null;
  return {
    run: {
      id: input.runId,
      outcome: exitCode === null ? 'running' : runOutcomeFor(exitCode),
      startedAt: input.startedAt,
      finishedAt: input.finishedAt,
      exitCode,
    },
    hosts,
  };
}
