/**
 * An operator's install action, run to the end as `patchline run` does: pass after pass, scan →
 * report → ask the server what it allows now → install that → reboot when the ring's reboot policy
 * says so → next pass, until nothing allowed is left, an install fails, or a limit stops it.
 *
 * Why passes: Windows Update offers an update only once its prerequisites are in (a cumulative
 * update after its servicing stack update, .NET after the CU's reboot), and the server allows only
 * what the host reported needed. Each pass's report lets the server decide on the updates that
 * just appeared — a rule allowing a classification, KB or severity covers them — and the agent
 * asks for that decision (GET /api/v1/agent/policy answers on the report it just acknowledged)
 * before it installs again.
 *
 * Where the action stands is on disk (action-running.json) before each pass, so the reboot between
 * passes (or an agent restart) resumes it at the next pass. Progress carries the pass and what it
 * installs; the last message says how it ended.
 */
import type { ActionProgress, AgentAction, AgentPolicy } from '../../domain/agent-protocol.ts';
import type { UpdateRecord } from '../../domain/update.ts';
import type { CycleSummary } from '../cycle.ts';
import type { RunningAction } from './state.ts';
import type { ScanResult } from './work.ts';

/** Passes an install action may install in, as `patchline run --max-cycles` (DEFAULT_MAX_CYCLES). */
export const MAX_INSTALL_PASSES = 5;
/** A pass cut short by the server going away (content download) starts again at most this often. */
export const MAX_INTERRUPTED_PASSES = 10;

export type InstallPhase = 'search' | 'download' | 'install';

/** What the action needs from the service (the service implements them over WUA and the server). */
export interface InstallActionPorts {
  /** Scans and queues the report (the next delivery sends it). */
  scanAndReport(signal: AbortSignal): Promise<ScanResult>;
  /** Delivers the queued report and answers what the server allows, decided on that report. */
  policyAfterReport(signal: AbortSignal): Promise<AgentPolicy>;
  /** One install cycle limited to `updateIds` (the cycle takes what becomes applicable among them). */
  install(
    updateIds: readonly string[],
    signal: AbortSignal,
    onProgress: (phase: InstallPhase, updateId: string | null, percent: number) => void,
  ): Promise<CycleSummary>;
  /** The HRESULT of the update's last failed attempt (null: none recorded). */
  lastHresult(updateId: string): Promise<string | null>;
  progress(p: Omit<ActionProgress, 'protocol' | 'at'>): Promise<void>;
  /** Saves where the action stands (null: it is over). */
  save(running: RunningAction | null): Promise<void>;
  /** Delivers what is queued, then reboots the host; the agent stops with it and resumes the action after. */
  reboot(signal: AbortSignal): Promise<void>;
  /** True for an error that only says the server is away for now (restarted, network cut). */
  transient(error: unknown): boolean;
  readonly log: (message: string) => void;
}

/** The updates this pass installs: needed now, allowed now, and named by the action (when it names any). */
export function installable(
  scan: Pick<ScanResult, 'needed'>,
  policy: Pick<AgentPolicy, 'allowedUpdateIds'>,
  actionIds: readonly string[] | undefined,
): UpdateRecord[] {
  const allowed = new Set(policy.allowedUpdateIds.map((id) => id.toLowerCase()));
  const named = actionIds ? new Set(actionIds.map((id) => id.toLowerCase())) : null;
  return scan.needed.filter((u) => {
    const id = u.updateId.toLowerCase();
    return allowed.has(id) && (named === null || named.has(id));
  });
}

/**
 * Whether the pass ends with a reboot: `if-required` when WUA asks for one (or one was already
 * pending and kept the cycle from installing), `always` after anything was installed, never with `never`.
 */
export function rebootAfterPass(
  reboot: AgentPolicy['reboot'],
  summary: Pick<CycleSummary, 'outcome' | 'rebootRequired' | 'installed'>,
): boolean {
  const pending = summary.outcome === 'reboot-pending';
  if (reboot === 'always') return summary.installed.length > 0 || pending;
  if (reboot === 'if-required') return summary.rebootRequired || pending;
  return false;
}

const label = (u: UpdateRecord): string => (u.kbs[0] ? `KB${u.kbs[0]}` : u.title || u.updateId);
const OK_OUTCOMES: ReadonlySet<string> = new Set(['done', 'reboot-required', 'reboot-pending']);

/**
 * Runs (or resumes) the action; resolves when it ended, or when the host reboots into its next pass.
 * Throws only on what the service reports as a failed action (an unreachable server after retries,
 * a scan WUA refused); an aborted signal leaves the saved state so the action resumes.
 */
export async function runInstallAction(
  ports: InstallActionPorts,
  action: AgentAction,
  resumed: RunningAction | null,
  signal: AbortSignal,
): Promise<void> {
  const installed = new Set(resumed?.installed ?? []);
  let interrupted = 0;
  const finish = async (state: 'succeeded' | 'failed', message: string, hresult?: string | null): Promise<void> => {
    await ports.save(null);
    await ports.progress({ state, message, ...(hresult ? { hresult } : {}) });
  };
  for (let pass = resumed?.nextPass ?? 1; ; pass++) {
    await ports.save({ action, nextPass: pass + 1, installed: [...installed] });
    const scan = await ports.scanAndReport(signal);
    const policy = await ports.policyAfterReport(signal);
    const todo = installable(scan, policy, action.updateIds);
    const done =
      pass === 1
        ? 'nothing allowed is needed on this host'
        : `nothing allowed is left after ${pass - 1} pass(es), ${installed.size} update(s) installed`;
    if (todo.length === 0) {
      const waiting = scan.rebootPending
        ? policy.reboot === 'never'
          ? '; a reboot is pending (the ring reboot policy is never: reboot the host to finish)'
          : '; a reboot is pending'
        : '';
      return finish('succeeded', `${done}${waiting}`);
    }
    const names = todo.map(label).join(', ');
    if (pass > MAX_INSTALL_PASSES)
      return finish(
        'failed',
        `stopped after ${MAX_INSTALL_PASSES} passes with ${todo.length} allowed update(s) still needed: ${names}`,
      );
    const again = todo.filter((u) => installed.has(u.updateId.toLowerCase()));
    if (again.length > 0)
      return finish(
        'failed',
        `pass ${pass}: ${again.map(label).join(', ')} installed in an earlier pass and needed again (rolled back?): stopped`,
      );

    ports.log(`action ${action.id}: pass ${pass}: installing ${names}`);
    await ports.progress({ state: 'running', phase: 'install', message: `pass ${pass}: installing ${names}` });
    // The cycle gets every allowed id the action names: one that becomes applicable during the cycle goes in too.
    const allowedIds = policy.allowedUpdateIds.filter(
      (id) => !action.updateIds || action.updateIds.some((a) => a.toLowerCase() === id.toLowerCase()),
    );
    let summary: CycleSummary;
    try {
      summary = await ports.install(allowedIds, signal, (phase, updateId, percent) => {
        void ports.progress({ state: 'running', phase, percent, ...(updateId ? { updateId } : {}) });
      });
    } catch (error) {
      // The server went away while the pass fetched from its content cache: nothing was installed
      // by this pass's cycle yet; the pass starts again once the server answers (the next
      // policyAfterReport waits for it).
      if (signal.aborted || !ports.transient(error) || ++interrupted > MAX_INTERRUPTED_PASSES) throw error;
      ports.log(`action ${action.id}: pass ${pass} interrupted (${(error as Error).message}); it starts again`);
      pass--;
      continue;
    }
    if (summary.outcome === 'aborted' && signal.aborted) return;
    for (const id of summary.installed) installed.add(id.toLowerCase());
    if (!OK_OUTCOMES.has(summary.outcome)) {
      // The server hears the failed attempt (HRESULT, attempts) with the host's state before the action ends.
      await ports.scanAndReport(signal);
      const failedFirst = summary.failed[0];
      const hresult = summary.hresult ?? (failedFirst ? await ports.lastHresult(failedFirst) : null);
      const failed = todo.filter((u) => summary.failed.includes(u.updateId.toLowerCase())).map(label);
      const which = failed.length > 0 ? ` (${failed.join(', ')})` : '';
      return finish('failed', `pass ${pass}: ${summary.message ?? summary.outcome}${which}`, hresult);
    }
    if (summary.outcome === 'reboot-pending' && !rebootAfterPass(policy.reboot, summary))
      return finish(
        'succeeded',
        `pass ${pass}: a reboot is pending and the ring reboot policy (${policy.reboot}) does not reboot: reboot the host, then install again`,
      );
    if (rebootAfterPass(policy.reboot, summary)) {
      await ports.save({ action, nextPass: pass + 1, installed: [...installed] });
      await ports.scanAndReport(signal);
      await ports.progress({
        state: 'running',
        phase: 'reboot',
        message: `pass ${pass}: ${summary.installed.length} installed; rebooting (ring reboot policy ${policy.reboot}), the action goes on after`,
      });
      await ports.reboot(signal);
      return;
    }
  }
}
