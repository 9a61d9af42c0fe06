/**
 * `npm run screenshots`: PNGs of the console's main pages, taken in Debian's Chromium against a lab
 * server (`patchline server --lab examples/lab/patch-night.yaml`, its agents on the simulated
 * Windows Update Agent), written to docs/img/ for the README. Before the pictures it does what an
 * administrator would on a first evening: allows the security updates for the pilot ring and
 * installs them, so the pages show installed, missing and failed updates and a finished action.
 *
 *     npm run screenshots            # all pages, 1280×800
 *     PATCHLINE_CHROMIUM=/path/to/chromium npm run screenshots
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { REPO_ROOT, startLabServer } from '../test/console/lab-server.ts';

const OUT = join(REPO_ROOT, 'docs', 'img');
const SCENARIO = 'examples/lab/patch-night.yaml';
const CHROMIUM = process.env.PATCHLINE_CHROMIUM ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1280, height: 800 } as const;
/** Installing the pilot ring's security updates in the lab (time scale 0.01): seconds; bounded. */
const INSTALL_TIMEOUT_MS = 180_000;
const UI_TIMEOUT_MS = 30_000;

/** Calls the API from the signed-in page: its session cookie and CSRF token, as the console does. */
async function api<T>(page: Page, method: string, path: string, body?: unknown): Promise<T> {
  const result = await page.evaluate(
    async ([m, p, b]) => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const r = await fetch(`/api/v1${p}`, {
        method: m,
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: b === undefined ? undefined : JSON.stringify(b),
      });
      return { status: r.status, text: await r.text() };
    },
    [method, path, body] as const,
  );
  if (result.status >= 300) throw new Error(`${method} ${path} → ${result.status} ${result.text}`);
  return (result.text ? JSON.parse(result.text) : undefined) as T;
}

/** Waits until the action has finished on every host (polling the API: this is a script, not a test). */
async function waitForAction(page: Page, id: string): Promise<void> {
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    const action = await api<{ state: string }>(page, 'GET', `/actions/${id}`);
    if (action.state === 'done' || action.state === 'failed') return;
    if (Date.now() > deadline)
      throw new Error(`action ${id} still ${action.state} after ${INSTALL_TIMEOUT_MS / 1000} s`);
    await page.waitForTimeout(1_000);
  }
}

/** Opens a page of the console, waits for what shows it is drawn, and saves a PNG of the window. */
async function shoot(page: Page, name: string, path: string, ready: (page: Page) => Promise<unknown>): Promise<void> {
  await page.goto(`${page.url().split('#')[0]}#${path}`);
  await ready(page);
  await page
    .locator('[aria-busy="true"]')
    .first()
    .waitFor({ state: 'detached' })
    .catch((error: unknown) => {
      throw new Error(`${name}: a grid was still loading after ${UI_TIMEOUT_MS / 1000} s`, { cause: error });
    });
  const file = join(OUT, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`wrote ${file}`);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), 'patchline-screenshots-'));
  const server = await startLabServer({ scenario: SCENARIO, dataDir: data, timeScale: 0.01 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  try {
    const context = await browser.newContext({
      viewport: VIEWPORT,
      deviceScaleFactor: 1,
      colorScheme: 'light',
      reducedMotion: 'reduce',
    });
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    await page.goto(`${server.url}/`);
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(server.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();

    // A first evening: allow the security updates for the pilot ring and install them.
    await api(page, 'POST', '/rules', { action: 'allow', classifications: ['Security Updates'], rings: ['pilot'] });
    const install = await api<{ id: string }>(page, 'POST', '/actions', { action: 'install', ring: 'pilot' });
    await waitForAction(page, install.id);
    const cu = (await api<{ updates: { updateId: string }[] }>(page, 'GET', '/updates?q=Cumulative&limit=1'))
      .updates[0];
    if (!cu) throw new Error('the lab catalog has no cumulative update');

    await shoot(page, 'overview', '/', (p) => p.getByTestId('hosts-total').waitFor());
    await shoot(page, 'updates', '/updates', (p) =>
      p.locator('table[aria-label="Updates"] tbody tr[data-row-id]').first().waitFor(),
    );
    await shoot(page, 'update', `/updates/${cu.updateId}`, (p) => p.getByRole('heading', { level: 1 }).waitFor());
    await shoot(page, 'hosts', '/hosts', (p) =>
      p.locator('table[aria-label="Hosts"] tbody tr[data-row-id]').first().waitFor(),
    );
    await shoot(page, 'host', '/hosts/web01', (p) => p.locator('tr[data-update-id]').first().waitFor());
    await shoot(page, 'activity', '/activity', (p) => p.getByRole('heading', { name: 'Activity' }).waitFor());
    await shoot(page, 'catalog', '/catalog', (p) => p.getByRole('heading', { name: 'Catalog and content' }).waitFor());
    // Rules and rings with the preview of a rule before it is saved (allow them for the broad ring too).
    await shoot(page, 'rules', '/rules', async (p) => {
      const form = p.getByRole('form', { name: 'New rule' });
      await form.getByLabel(/^Classifications/).fill('Security Updates');
      await form.getByLabel(/^Only in rings/).fill('broad');
      await form.getByRole('button', { name: /Preview and save/ }).click();
      await p
        .getByTestId('rule-preview')
        .filter({ hasText: /This rule / })
        .waitFor();
    });
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

await main();
