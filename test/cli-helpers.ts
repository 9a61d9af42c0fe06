/**
 * Starting the real `patchline` CLI as a scheduler does, for the run tests: a child process with
 * its output collected, a way to wait for a line (no sleeps), and a per-test workspace whose lab
 * daemons are stopped afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { stopLabDaemon } from '../src/lab/daemon-main.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SMALL = join(ROOT, 'examples/lab/small.yaml');
/** Upper bound for one CLI run of the tiny scenarios; a hang fails the test instead of CI. */
const RUN_TIMEOUT_MS = 120_000;

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  done: Promise<Ran>;
  /** Resolves with the first stdout line matching, rejects if the process ends first. */
  line(match: RegExp): Promise<string>;
}

export function start(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { match: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const w of [...waiters]) {
      const found = stdout.split('\n').find((l) => w.match.test(l));
      if (found) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(found);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const done = new Promise<Ran>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  const line = (match: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const found = stdout.split('\n').find((l) => match.test(l));
      if (found) return resolve(found);
      waiters.push({ match, resolve });
      void done.then((r) =>
        reject(
          new Error(`the run ended (exit ${r.code}) before printing ${match}:\n${r.stdout.slice(-2000)}\n${r.stderr}`),
        ),
      );
    });
  return { child, done, line };
}

export const run = (args: string[], env?: NodeJS.ProcessEnv): Promise<Ran> => start(args, env).done;

export async function workspace(t: TestContext): Promise<{ dir: string; state: string; report: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-run-'));
  t.after(async () => {
    const labs = join(dir, 'lab');
    if (existsSync(labs)) for (const id of await readdir(labs)) await stopLabDaemon(join(labs, id));
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, state: join(dir, 'state.sqlite'), report: join(dir, 'report.json') };
}

export interface Report {
  run: { id: string; outcome: string; exitCode: number | null };
  hosts: {
    name: string;
    outcome: string;
    cycles: number;
    reboots: number;
    message: string | null;
    updates: { kb: string; result: string; hresult: string | null; message: string | null; attempts: number }[];
  }[];
  warnings?: { kind: string; option: string; values: string[]; seen: string[] }[];
  error?: { code: string; message: string };
}

export const readReport = async (file: string): Promise<Report> => JSON.parse(await readFile(file, 'utf8')) as Report;
