/**
 * Which WUA provider the agent starts (docs/internals.md §5): PATCHLINE_PROVIDER_CMD (a JSON argv)
 * when set — the lab sets it —, else on Windows Windows PowerShell 5.1 running the wua.ps1 that
 * ships beside the agent, else no provider at all.
 */
import { fileURLToPath } from 'node:url';
import { PatchlineError } from '../domain/errors.ts';

/** The PowerShell provider, relative to this file (src/agent → src/wua/providers/powershell). */
export const POWERSHELL_PROVIDER_SCRIPT = fileURLToPath(
  new URL('../wua/providers/powershell/wua.ps1', import.meta.url),
);

/**
 * @example resolveProviderCommand({}, 'win32')
 *   // ['powershell.exe', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', '…\\wua.ps1']
 */
export function resolveProviderCommand(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
  scriptPath: string = POWERSHELL_PROVIDER_SCRIPT,
): readonly string[] {
  const fromEnv = env.PATCHLINE_PROVIDER_CMD;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    let argv: unknown;
    try {
      argv = JSON.parse(fromEnv);
    } catch (error) {
      throw new PatchlineError(
        'PROVIDER_UNAVAILABLE',
        `PATCHLINE_PROVIDER_CMD is not JSON: give the argv as a JSON array, e.g. ["node","provider.mjs"]`,
        { cause: error },
      );
    }
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
      throw new PatchlineError(
        'PROVIDER_UNAVAILABLE',
        'PATCHLINE_PROVIDER_CMD must be a non-empty JSON array of strings, e.g. ["node","provider.mjs"]',
      );
    }
    return argv as string[];
  }
  if (platform === 'win32') {
    return ['powershell.exe', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', scriptPath];
  }
  throw new PatchlineError(
    'PROVIDER_UNAVAILABLE',
    'no WUA provider on this platform: run against a lab (patchline run --lab …)',
  );
}
