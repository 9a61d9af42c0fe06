/**
 * `patchline server --lab SCENARIO` as a child process, as a user starts it: the console's URL and
 * the one-time admin password are read from what it prints. Used by the console's lab test and by
 * `npm run screenshots`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The lab server generates and signs its catalog first: allow a loaded machine its time. */
export const LAB_SERVER_START_TIMEOUT_MS = 120_000;

export interface LabServer {
  /** The console's address, without the trailing slash. */
  readonly url: string;
  readonly password: string;
  /** Stops the server and its agents (SIGTERM) and waits for the process to end. */
  stop(): Promise<void>;
}

/** Starts the lab server on a free loopback port with its data in `dataDir`. */
export async function startLabServer(options: {
  scenario: string;
  dataDir: string;
  timeScale?: number;
}): Promise<LabServer> {
  const args = [
    'bin/patchline.js',
    'server',
    '--lab',
    options.scenario,
    '--data',
    options.dataDir,
    '--listen',
    '127.0.0.1:0',
  ];
  if (options.timeScale !== undefined) args.push('--lab-time-scale', String(options.timeScale));
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<{ url: string; password: string }>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `the lab server printed no console URL and login within ${LAB_SERVER_START_TIMEOUT_MS / 1000} s:\n${output}`,
          ),
        ),
      LAB_SERVER_START_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const url = /console:\s+(\S+)/.exec(output)?.[1];
      const password = /sign in:\s+admin \/ (\S+)/.exec(output)?.[1];
      if (url && password) {
        clearTimeout(timer);
        resolve({ url: url.replace(/\/$/, ''), password });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the lab server exited (${code}) before it was ready:\n${output}`));
    });
  });
  try {
    const { url, password } = await ready;
    return {
      url,
      password,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** A 1280×800 page of a new browser context, signed in to the lab server as its admin. */
export async function signedInAdmin(browser: Browser, server: LabServer, timeoutMs: number): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(timeoutMs);
  await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded' });
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(server.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  return page;
}
