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
/** shutdown.exe returns at once; the lab daemon answers quickly. */
export const REBOOT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * @example planReboot({ PATCHLINE_LAB_CONTROL_URL: 'http://127.0.0.1:4100/hosts/web01', PATCHLINE_LAB_CONTROL_TOKEN: 't' }, 'linux')
 *   // { kind: 'lab', url: 'http://127.0.0.1:4100/hosts/web01/reboot', token: 't' }
 */
export function planReboot(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): RebootPlan {
  const url = env.PATCHLINE_LAB_CONTROL_URL;
  const token = env.PATCHLINE_LAB_CONTROL_TOKEN;
  if (url && token) return { kind: 'lab', url: `${url.replace(/\/+$/, '')}/reboot`, token };
  if (platform === 'win32') return { kind: 'command', argv: WINDOWS_REBOOT_ARGV };
  throw new PatchlineError('REBOOT_UNAVAILABLE',
    `cannot reboot this host: it is not Windows (${platform}) and no lab control URL is set` +
    ' (PATCHLINE_LAB_CONTROL_URL and PATCHLINE_LAB_CONTROL_TOKEN); run the cycle with reboot policy never');
}

export interface RebootIo {
  readonly fetch?: typeof fetch;
  readonly run?: (argv: readonly string[]) => Promise<void>;
}

/** Carries out a plan; throws REBOOT_FAILED with the reason when the host refused. */
export async function executeReboot(plan: RebootPlan, io: RebootIo = {}): Promise<void> {
  if (plan.kind === 'lab') {
    const doFetch = io.fetch ?? globalThis.fetch;
    let response: Response;
    try {
      response = await doFetch(plan.url, {
        method: 'POST', headers: { authorization: `Bearer ${plan.token}` }, signal: AbortSignal.timeout(REBOOT_REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new PatchlineError('REBOOT_FAILED', `the lab host did not take the reboot request at ${plan.url}: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) {
      throw new PatchlineError('REBOOT_FAILED', `the lab host refused the reboot (${response.status} ${(await response.text()).slice(0, 200)})`,
        { context: { status: response.status } });
    }
    return;
  }
  try {
    await (io.run ?? runCommand)(plan.argv);
  } catch (error) {
    throw new PatchlineError('REBOOT_FAILED', `${plan.argv.join(' ')} failed: ${(error as Error).message}. Reboot the host by hand`, { cause: error });
  }
}

function runCommand(argv: readonly string[]): Promise<void> {
  const [command, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(command ?? '', args, { timeout: REBOOT_REQUEST_TIMEOUT_MS, windowsHide: true }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${error.message}${stderr ? `: ${stderr.trim()}` : ''}`));
      else resolve();
    });
  });
}
