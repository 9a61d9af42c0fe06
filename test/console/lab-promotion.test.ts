// Issue 8, test 6 against `patchline server --lab`: a real lab agent in the pilot ring fails to
// install an update (the lab's Windows Update Agent returns 0x80070643 every time), the broad
// ring's promotion gate halts, and the console's promotions table shows the halt with its
// evidence — while the broad ring's lab host never installs the update.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { readHostState } from '../../src/lab/host-state.ts';
import { chromiumMissing, launchChromium } from './browser.ts';
import { consoleMissing } from './harness.ts';
import { signedInAdmin, startLabServer, type LabServer } from './lab-server.ts';

const skip = chromiumMissing() ?? consoleMissing() ?? false;
const UI_TIMEOUT_MS = 20_000;
/** Lab installs at time scale 0.01 take seconds; a loaded machine gets a minute. */
const INSTALL_TIMEOUT_MS = 60_000;
const KB = '5044445';

// pilot01 is the first (so the pilot) host of its product; broad01 is in the broad ring.
const SCENARIO = `
timeScale: 0.01
payloadScale: 0.001
catalog:
  - key: lcu-2026-11
    kb: ${KB}
    title: 2026-11 Cumulative Update for Windows Server 2022 for x64-based Systems (KB${KB})
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    sizeMB: 20
    installSeconds: 60
    released: 2026-11-10
hosts:
  - name: pilot01
    product: Windows Server 2022
    faults:
      - { update: lcu-2026-11, failAlways: true, hresult: "0x80070643" }
  - name: broad01
    product: Windows Server 2022
`;

describe('web console with a lab fleet: promotion', { skip }, () => {
  let data: string;
  let server: LabServer;
  let browser: Browser;
  let page: Page;

  /** An API call from the signed-in page: its session cookie and CSRF token, as the console sends them. */
  const call = (method: string, path: string, body?: unknown) =>
    page.evaluate(
      async ({ method, path, body }) => {
        const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
        const res = await fetch(`/api/v1${path}`, {
          method,
          headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
          body: body === undefined ? null : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      },
      { method, path, body },
    );

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'patchline-console-promotion-'));
    const scenario = join(data, 'promotion.yaml');
    writeFileSync(scenario, SCENARIO);
    server = await startLabServer({ scenario, dataDir: join(data, 'server'), timeScale: 0.01 });
    browser = await launchChromium();
    page = await signedInAdmin(browser, server, UI_TIMEOUT_MS);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it('a promotion halted by a pilot failure is visible with its evidence, and the broad host never installs the update', async () => {
    // The broad ring takes an update only after the pilot ring installed it on one host without a failure.
    const ring = await call('PUT', '/rings/broad', {
      position: 1,
      defaultAllow: true,
      members: [],
      promotion: { minHosts: 1, minSuccessPercent: 100, soakHours: 0, maxFailurePercent: 0 },
    });
    assert.equal(ring.status, 200, JSON.stringify(ring.body));
    const rule = await call('POST', '/rules', { action: 'allow', classifications: ['Security Updates'] });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    const action = await call('POST', '/actions', { action: 'install', ring: 'pilot' });
    assert.equal(action.status, 202, JSON.stringify(action.body));

    // The console's promotions table: halted, with the pilot failure as its evidence.
    await page.goto(`${server.url}/#/rules`);
    const row = page.locator(`tr[data-promotion="${KB}/broad"]`);
    await row
      .locator('[data-status]')
      .filter({ hasText: /^halted$/ })
      .waitFor({ timeout: INSTALL_TIMEOUT_MS });
    assert.match(await row.innerText(), /1 failed in pilot/);

    // What the lab hosts really did: pilot01 tried and failed; broad01 never attempted the update.
    const pilot = await readHostState(join(data, 'server', 'lab', 'hosts', 'pilot01'));
    assert.ok(pilot, 'the lab host pilot01 has a state');
    assert.ok(
      pilot.history.some((h) => h.updateKey === 'lcu-2026-11' && /0x80070643/i.test(JSON.stringify(h))),
      `pilot01's failed attempt is in its history: ${JSON.stringify(pilot.history)}`,
    );
    const broad = await readHostState(join(data, 'server', 'lab', 'hosts', 'broad01'));
    assert.ok(broad, 'the lab host broad01 has a state');
    assert.deepEqual(
      broad.history.filter((h) => h.updateKey === 'lcu-2026-11'),
      [],
      'broad01 never attempted the update the halt kept from it',
    );
  });
});
