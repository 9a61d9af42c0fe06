/**
 * Rebooting the host after a cycle (docs/internals.md §6): the lab daemon's control URL when
 * PATCHLINE_LAB_CONTROL_URL and PATCHLINE_LAB_CONTROL_TOKEN are set, else `shutdown.exe /r` on
 * Windows, else an error. `planReboot` decides (pure); `executeReboot` does it.
 */
import { execFile } from 'node:child_process';
import { PatchlineError } from '../domain/errors.ts';

export type RebootPlan =
  | { readonly kind: 'lab'; readonly url: string; readonly token: string }
  | { readonly kind: 'command'; readonly argv: readonly string[] };

/** Reboot now (no delay: the log is already safe); the comment shows in the System event log. */
export const WINDOWS_REBOOT_ARGV = Object.freeze(['shutdown.exe', '/r', '/t', '0', '/c', 'Patchline']);
/** shutdown.exe returns at once; the lab daemon answers quickly. Also the lab's whole budget, retries included. */
export const REBOOT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * One attempt of the lab's reboot request. A connection the daemon's kernel dropped (accept
 * queue full) waits for SYN retransmits — 1 s, 3 s, 7 s, 15 s — so a fresh attempt on a new
 * connection beats waiting out one attempt for the whole budget.
 */
export const LAB_REBOOT_ATTEMPT_TIMEOUT_MS = 8_000;
/** Pause between attempts of the lab's reboot request. */
const LAB_REBOOT_RETRY_PAUSE_MS = 250;

/**
 * @example planReboot({ PATCHLINE_LAB_CONTROL_URL: 'http://127.0.0.1:4100/hosts/web01', PATCHLINE_LAB_CONTROL_TOKEN: 't' }, 'linux')
 *   // { kind: 'lab', url: 'http://127.0.0.1:4100/hosts/web01/reboot', token: 't' }
 */
export function planReboot(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): RebootPlan {
  const url = env.PATCHLINE_LAB_CONTROL_URL;
  const token = env.PATCHLINE_LAB_CONTROL_TOKEN;
  if (url && token) return { kind: 'lab', url: `${url.replace(/\/+$/, '')}/reboot`, token };
  if (platform === 'win32') return { kind: 'command', argv: WINDOWS_REBOOT_ARGV };
  throw new PatchlineError(
    'REBOOT_UNAVAILABLE',
    `cannot reboot this host: it is not Windows (${platform}) and no lab control URL is set` +
      ' (PATCHLINE_LAB_CONTROL_URL and PATCHLINE_LAB_CONTROL_TOKEN); run the cycle with reboot policy never',
  );
}

export interface RebootIo {
  readonly fetch?: typeof fetch;
  readonly run?: (argv: readonly string[]) => Promise<void>;
}

/** Carries out a plan; throws REBOOT_FAILED with the reason when the host refused. */
export async function executeReboot(plan: RebootPlan, io: RebootIo = {}): Promise<void> {
  if (plan.kind === 'lab') {
    await labReboot(plan, io.fetch ?? globalThis.fetch);
    return;
  }
  try {
    await (io.run ?? runCommand)(plan.argv);
  } catch (error) {
    throw new PatchlineError(
      'REBOOT_FAILED',
      `${plan.argv.join(' ')} failed: ${(error as Error).message}. Reboot the host by hand`,
      { cause: error },
    );
  }
}

function runCommand(argv: readonly string[]): Promise<void> {
  const [command, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(
      command ?? '',
      args,
      { timeout: REBOOT_REQUEST_TIMEOUT_MS, windowsHide: true },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`${error.message}${stderr ? `: ${stderr.trim()}` : ''}`));
        else resolve();
      },
    );
  });
}

/**
 * POSTs the lab's reboot request, retrying (new connection) when no answer came — connection
 * refused or dropped, or an attempt timed out — until REBOOT_REQUEST_TIMEOUT_MS. A 503 ("already
 * rebooting") after an unanswered attempt means that attempt reached the daemon: the reboot is on.
 */
async function labReboot(plan: Extract<RebootPlan, { kind: 'lab' }>, doFetch: typeof fetch): Promise<void> {
  const budget = AbortSignal.timeout(REBOOT_REQUEST_TIMEOUT_MS);
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await doFetch(plan.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${plan.token}` },
        signal: AbortSignal.any([budget, AbortSignal.timeout(LAB_REBOOT_ATTEMPT_TIMEOUT_MS)]),
      });
    } catch (error) {
      lastError = error;
      if (budget.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, LAB_REBOOT_RETRY_PAUSE_MS));
      if (budget.aborted) break;
      continue;
    }
    const text = await response.text();
    if (response.ok || (response.status === 503 && attempt > 0)) return;
    throw new PatchlineError(
      'REBOOT_FAILED',
      `the lab host refused the reboot (${response.status} ${text.slice(0, 200)})`,
      { context: { status: response.status } },
    );
  }
  throw new PatchlineError(
    'REBOOT_FAILED',
    `the lab host did not take the reboot request at ${plan.url} within ${REBOOT_REQUEST_TIMEOUT_MS / 1000} s: ${(lastError as Error | undefined)?.message ?? 'no answer'}`,
    { cause: lastError },
  );
}
