/**
 * One connector process per run: a lock file beside the state file (`runs/RUN_ID.lock`, holding
 * the owner's host and pid). A scheduler that re-runs a job with `--resume` while the first job
 * still runs, or two operators resuming the same run, must not drive the same hosts twice. A
 * lock left by a process that is gone (kill -9, a crash) is taken over.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { usageError } from '../domain/errors.ts';

export interface RunLock {
  release(): void;
}

interface Owner {
  readonly host: string;
  readonly pid: number;
  readonly since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else — alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): Owner | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Owner;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // Half-written by a process killed mid-write: nobody owns it.
    return { host: hostname(), pid: -1, since: '' };
  }
}

/**
 * Takes the run's lock or refuses with RUN_IN_PROGRESS naming the process that holds it.
 * @example const lock = lockRun('/var/lib/pl/state.sqlite', '20261121-0512-7f3a1c'); try { … } finally { lock.release(); }
 */
export function lockRun(stateFile: string, runId: string): RunLock {
  const file = join(dirname(resolve(stateFile)), 'runs', `${runId}.lock`);
  mkdirSync(dirname(file), { recursive: true });
  const me: Owner = { host: hostname(), pid: process.pid, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          unlinkSync(file);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(file);
    // Another machine's process cannot be checked from here: trust its lock.
    if (owner && (owner.host !== me.host || (owner.pid > 0 && alive(owner.pid)))) {
      throw usageError(
        'RUN_IN_PROGRESS',
        `Run ${runId} is being run by process ${owner.pid} on ${owner.host} (since ${owner.since}). Wait for it to end, or stop it (Ctrl-C / SIGTERM); if that process is gone for good, delete ${file}.`,
        { context: { run: runId, file } },
      );
    }
    // The owner is gone: take the lock over (if another process races us, one of us gets EEXIST again).
    try {
      unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw usageError('RUN_IN_PROGRESS', `Run ${runId} is being taken up by another process at this moment; try again.`, {
    context: { run: runId, file },
  });
}
