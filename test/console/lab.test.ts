// The console against `patchline server --lab`: real agents (the agent code that ships, on the
// simulated Windows Update Agent) behind the server, so what the console says is checked against
// what the lab host really did — a forbidden update is never installed, and an install started
// from a host's page ends with that host compliant.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { applicableUpdates } from '../../src/lab/applicability.ts';
import { readHostState } from '../../src/lab/host-state.ts';
import { loadScenario } from '../../src/lab/scenario.ts';
import { until } from '../support/until.ts';
import { chromiumMissing, launchChromium } from './browser.ts';
import { consoleMissing } from './harness.ts';
import { REPO_ROOT, signedInAdmin, startLabServer, type LabServer } from './lab-server.ts';

const SCENARIO = 'examples/lab/patch-night.yaml';
type Hosts = { hosts: { name: string; lastScanAt: string | null }[] };

const skip = chromiumMissing() ?? consoleMissing() ?? false;
const UI_TIMEOUT_MS = 20_000;
/** Lab installs at time scale 0.01 take seconds; a loaded machine gets a minute. */
const INSTALL_TIMEOUT_MS = 60_000;
const MSRT = { key: 'msrt-2026-11', kb: '890830' };
const DEFENDER = { key: 'def-2026-11', kb: '2267602' };

describe('web console with a lab fleet', { skip }, () => {
  let data: string;
  let server: LabServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'patchline-console-lab-'));
    server = await startLabServer({ scenario: SCENARIO, dataDir: data, timeScale: 0.01 });
    browser = await launchChromium();
    page = await signedInAdmin(browser, server, UI_TIMEOUT_MS);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it("filters the updates grid by severity and classification: exactly the lab's matching updates, each with the lab's host count", async () => {
    const scenario = await loadScenario(join(REPO_ROOT, SCENARIO));
    await until(
      'every lab host to report a scan',
      INSTALL_TIMEOUT_MS,
      async () => {
        const hosts = await page.evaluate(
          async () => ((await (await fetch('/api/v1/hosts?limit=500')).json()) as Hosts).hosts,
        );
        return hosts.length === scenario.hosts.length && hosts.every((h) => h.lastScanAt) ? true : undefined;
      },
      () => 'some hosts have not reported',
    );
    // What the lab itself says each host needs, counted per KB for Critical security updates.
    const expected = new Map<string, number>();
    for (const host of scenario.hosts) {
      const state = await readHostState(join(data, 'lab', 'hosts', host.name));
      assert.ok(state, `the lab host ${host.name} has a state`);
      for (const entry of applicableUpdates(scenario, host, state))
        if (entry.severity === 'Critical' && entry.classification === 'Security Updates' && entry.kb)
          expected.set(`KB${entry.kb}`, (expected.get(`KB${entry.kb}`) ?? 0) + 1);
    }
    assert.ok(expected.size >= 2, 'the scenario has Critical security updates to filter for');

    await page.goto(`${server.url}/#/updates`);
    const grid = page.getByRole('table', { name: 'Updates' });
    await grid.locator('tbody tr[data-row-id]').first().waitFor();
    await page.getByLabel('Severity').selectOption('Critical');
    await page.getByLabel('Classification').selectOption('Security Updates');
    // The filtered page itself: the Defender definitions (no severity) leave the grid.
    await grid.getByRole('link', { name: `KB${DEFENDER.kb}`, exact: true }).waitFor({ state: 'detached' });
    const rows = await grid
      .locator('tbody tr[data-row-id]')
      .evaluateAll((trs) =>
        trs.map((tr) => [
          tr.querySelector('td:nth-child(2)')?.textContent ?? '',
          Number(tr.querySelector('[data-count="needed"]')?.textContent),
        ]),
      );
    // Updates no host needs are listed with 0 (the catalog knows them); the rest match the lab.
    assert.deepEqual(
      rows.filter(([, needed]) => needed !== 0).sort(),
      [...expected].sort(),
      "the grid's Critical security updates and their host counts are the lab's",
    );
  });

  it('an update forbidden from the grid is DISCARDED and never installed; Install now ends with the host compliant', async () => {
    // The pilot ring may take definition updates and update rollups (the lab has no rule at first).
    await page.goto(`${server.url}/#/rules`);
    const form = page.getByRole('form', { name: 'New rule' });
    await form.getByLabel(/^Classifications/).fill('Definition Updates, Update Rollups');
    await form.getByLabel(/^Only in rings/).fill('pilot');
    await form.getByRole('button', { name: /Preview and save/ }).click();
    await page
      .getByTestId('rule-preview')
      .filter({ hasText: /allows 2 updates on 2 hosts/ })
      .waitFor();
    await page.getByRole('button', { name: 'Save rule' }).click();
    await page.locator('tr[data-rule-id] td[data-action="allow"]').waitFor();

    // Forbid the Malicious Software Removal Tool from the updates grid: the preview says what changes.
    await page.goto(`${server.url}/#/updates?q=${MSRT.kb}`);
    const grid = page.getByRole('table', { name: 'Updates' });
    await grid.getByRole('link', { name: `KB${MSRT.kb}` }).waitFor();
    await grid
      .locator('tbody tr')
      .filter({ has: page.getByRole('link', { name: `KB${MSRT.kb}`, exact: true }) })
      .getByRole('checkbox')
      .check();
    await page.getByRole('button', { name: 'Forbid' }).click();
    await page
      .getByTestId('rule-preview')
      .filter({ hasText: /forbids 1 update on 2 hosts/ })
      .waitFor();
    await page.getByRole('button', { name: 'Save rule' }).click();
    await page.getByText('Rule saved: forbid 1 update(s).').waitFor();

    // web01 (pilot): the MSRT is DISCARDED, Defender's definitions still to install; install them.
    await page.goto(`${server.url}/#/hosts/web01`);
    const row = (kb: string) =>
      page.locator('tr[data-update-id]').filter({ has: page.getByRole('link', { name: `KB${kb}`, exact: true }) });
    await row(MSRT.kb).locator('td[data-state="DISCARDED"]').waitFor();
    // Needed and allowed: MISSING, or PENDING once the server has cached its files.
    await row(DEFENDER.kb).locator('td[data-state="MISSING"], td[data-state="PENDING"]').waitFor();
    await page.getByRole('button', { name: 'Install now' }).click();
    await page.getByText('install started').waitFor();
    // Live: the agent's progress, then the host's table, change without a reload.
    await page
      .getByTestId('host-progress')
      .getByText(/succeeded/)
      .waitFor({ timeout: INSTALL_TIMEOUT_MS });
    await row(DEFENDER.kb).locator('td[data-state="OK"]').waitFor({ timeout: INSTALL_TIMEOUT_MS });
    assert.equal(
      await page.locator('td[data-state="MISSING"], td[data-state="PENDING"]').count(),
      0,
      'web01 is compliant: nothing it may install is left',
    );
    assert.equal(await row(MSRT.kb).locator('td[data-state="DISCARDED"]').count(), 1);

    // What the lab host really did: Defender's definitions installed, the MSRT never attempted.
    const state = await readHostState(join(data, 'lab', 'hosts', 'web01'));
    assert.ok(state, 'the lab host web01 has a state');
    assert.ok(state.installed[DEFENDER.key], 'web01 installed the definition update');
    assert.equal(state.installed[MSRT.key], undefined, 'web01 never installed the forbidden update');
    assert.deepEqual(
      state.history.filter((h) => h.updateKey === MSRT.key),
      [],
      'web01 never attempted the forbidden update',
    );
  });
});
