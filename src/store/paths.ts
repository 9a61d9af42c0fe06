/**
 * Where the default state file lives: the user's data directory, as each OS names it.
 * `--state FILE` overrides it; PATCHLINE_STATE does too (for schedulers that set env vars).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'Patchline');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'Patchline');
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'patchline');
}

export function defaultStateFile(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  return env.PATCHLINE_STATE || join(defaultDataDir(env, platform), 'state.sqlite');
}
