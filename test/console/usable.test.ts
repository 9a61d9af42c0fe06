// The console is usable without a mouse, by assistive technology, and on a narrow window: keyboard
// only (Tab, Enter, Space, arrow keys) from sign-in to a grid row's action; every control has an
// accessible name; no page scrolls sideways at 1280×800 or 600×900 and the navigation stays
// reachable. Debian's Chromium against a real server, as in console.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { chromiumMissing, launchChromium } from './browser.ts';
import { consoleMissing, PASSWORDS, startConsoleServer, type ConsoleServer } from './harness.ts';

const skip = chromiumMissing() ?? consoleMissing() ?? false;
const UI_TIMEOUT_MS = 15_000;
/** More Tab presses than any page has controls before its grid: a control never reached is a failure. */
const MAX_TABS = 80;

/** True when `target` holds the keyboard focus. */
const focused = (target: Locator) => target.evaluate((el) => el === el.ownerDocument.activeElement);

/** Presses `key` (Tab or Shift+Tab) until `target` has the focus, as a keyboard user would. */
async function pressUntilFocused(page: Page, target: Locator, key: 'Tab' | 'Shift+Tab' = 'Tab'): Promise<void> {
  await target.waitFor();
  for (let i = 0; i < MAX_TABS; i++) {
    await page.keyboard.press(key);
    if (await focused(target)) return;
  }
  assert.fail(`${String(target)} was not reached with ${MAX_TABS} presses of ${key}`);
}

/** Lines of Playwright's accessibility snapshot that are controls without a name. */
function unnamedControls(snapshot: string): string[] {
  return snapshot
    .split('\n')
    .filter((line) =>
      /^\s*- (button|textbox|searchbox|checkbox|radio|combobox|spinbutton|slider|switch|link|listbox|tab|menuitem)(\s*\[[^\]]*\])*:?\s*$/.test(
        line,
      ),
    );
}

describe('web console: keyboard, labels, narrow windows', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;
  let admin: BrowserContext;
  const problems: string[] = [];
  const pages = (): [string, string, (page: Page) => Locator][] => {
    const cu = server.updates.get('cu-2026-11')!.updateId;
    return [
      ['overview', '/', (p) => p.getByTestId('hosts-total')],
      ['updates', '/updates', (p) => p.locator(`table[aria-label="Updates"] tr[data-row-id="${cu}"]`)],
      ['one update', `/updates/${cu}`, (p) => p.getByRole('heading', { level: 1, name: /KB5044444/ })],
      ['hosts', '/hosts', (p) => p.locator('table[aria-label="Hosts"] tr[data-row-id="web01"]')],
      ['one host', '/hosts/web02', (p) => p.locator('tr[data-update-id]').first()],
      ['rules and rings', '/rules', (p) => p.getByRole('heading', { name: 'Rules and rings' })],
      ['activity', '/activity', (p) => p.getByRole('heading', { name: 'Activity' })],
      ['catalog', '/catalog', (p) => p.getByRole('heading', { name: 'Catalog and content' })],
    ];
  };

  before(async () => {
    server = await startConsoleServer();
    await server.api('PUT', '/rings/pilot', { position: 0, defaultAllow: false, members: [] });
    for (const h of ['web01', 'web02']) await server.enroll(h, 'pilot');
    await server.report('web01', [{ key: 'ssu-2026-10' }, { key: 'cu-2026-11' }, { key: 'net-2026-11' }]);
    await server.report('web02', [{ key: 'ssu-2026-10' }, { key: 'cu-2026-11', failed: '0x80070643' }]);
    browser = await launchChromium();
    admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await newPage(admin, '/');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(PASSWORDS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.close();
  });
  after(async () => {
    await admin?.close();
    await browser?.close();
    await server?.close();
    assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
  });

  async function newPage(context: BrowserContext, path: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
        problems.push(`csp: ${m.text()}`);
    });
    // The page's own elements are awaited next; 'load' adds nothing but time on a loaded machine.
    await page.goto(`${server.url}/#${path}`, { waitUntil: 'domcontentloaded' });
    return page;
  }

  it('works with the keyboard alone: sign in, move between pages, filter, select a row and act on it', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await newPage(context, '/');
      // Sign in: the name field has the focus; Tab to the password; Enter submits.
      const name = page.getByLabel('User name');
      await name.waitFor();
      assert.ok(await focused(name), 'the user name field has the focus on arrival');
      await page.keyboard.type('operator');
      await page.keyboard.press('Tab');
      await page.keyboard.type(PASSWORDS.operator);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Overview' }).waitFor();

      // The first Tab reaches "Skip to content"; Enter puts the focus on the page's content and
      // stays on the page (the console's routes live in the URL's fragment too).
      await page.keyboard.press('Tab');
      assert.ok(
        await focused(page.getByRole('link', { name: 'Skip to content' })),
        'the first Tab reaches the skip link',
      );
      await page.keyboard.press('Enter');
      assert.ok(await focused(page.locator('main')), 'the skip link moves the focus to the content');
      await page.getByRole('heading', { name: 'Overview' }).waitFor();

      // Move to Hosts through the navigation; open a host from the grid with Enter.
      const nav = page.getByRole('navigation', { name: 'Main' });
      await pressUntilFocused(page, nav.getByRole('link', { name: 'Hosts' }));
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Hosts' }).waitFor();
      await pressUntilFocused(page, page.getByRole('table', { name: 'Hosts' }).getByRole('link', { name: 'web01' }));
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'web01' }).waitFor();

      // Arrow keys move along the action toolbar; Space presses the button.
      const actions = page.getByRole('toolbar', { name: 'Actions' });
      await pressUntilFocused(page, actions.getByRole('button', { name: 'Scan now' }));
      await page.keyboard.press('ArrowRight');
      assert.ok(
        await focused(actions.getByRole('button', { name: 'Download now' })),
        'ArrowRight moves to the next action',
      );
      await page.keyboard.press('ArrowLeft');
      await page.keyboard.press('Space');
      await actions
        .getByRole('status')
        .filter({ hasText: /scan started/ })
        .waitFor();

      // Updates: pick a severity with the arrow keys, select a row with Space, download it.
      await pressUntilFocused(page, nav.getByRole('link', { name: 'Updates' }), 'Shift+Tab');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Updates' }).waitFor();
      const severity = page.getByLabel('Severity');
      await pressUntilFocused(page, severity);
      for (let i = 0; i < 6 && (await severity.inputValue()) !== 'Critical'; i++)
        await page.keyboard.press('ArrowDown');
      assert.equal(await severity.inputValue(), 'Critical', 'the arrow keys choose a severity');
      const net = server.updates.get('net-2026-11')!.updateId;
      const cu = server.updates.get('cu-2026-11')!.updateId;
      const grid = page.getByRole('table', { name: 'Updates' });
      await grid.locator(`tbody tr[data-row-id="${net}"]`).waitFor({ state: 'detached' });
      const select = grid.getByRole('checkbox', { name: `Select ${cu}` });
      await pressUntilFocused(page, select);
      await page.keyboard.press('Space');
      assert.ok(await select.isChecked(), 'Space selects the row');
      await pressUntilFocused(
        page,
        page.getByRole('toolbar', { name: 'Selected updates' }).getByRole('button', { name: 'Download now' }),
        'Shift+Tab',
      );
      await page.keyboard.press('Enter');
      await page.getByText(/Download started on 2 host\(s\)\./).waitFor();
    } finally {
      await context.close();
    }
  });

  it('gives every control on every page an accessible name', async () => {
    const page = await newPage(admin, '/');
    for (const [what, path, ready] of pages()) {
      await page.goto(`${server.url}/#${path}`, { waitUntil: 'domcontentloaded' });
      await ready(page).waitFor();
      const unnamed = unnamedControls(await page.locator('body').ariaSnapshot());
      assert.deepEqual(unnamed, [], `controls without a name on ${what}`);
    }
    // The sign-in form too (a fresh context has no session).
    const context = await browser.newContext();
    try {
      const signIn = await newPage(context, '/');
      await signIn.getByRole('button', { name: 'Sign in' }).waitFor();
      assert.deepEqual(
        unnamedControls(await signIn.locator('body').ariaSnapshot()),
        [],
        'controls without a name on sign-in',
      );
    } finally {
      await context.close();
    }
    await page.close();
  });

  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 600, height: 900 },
  ]) {
    it(`fits ${viewport.width}×${viewport.height} without sideways scrolling, with the navigation in reach`, async () => {
      const page = await newPage(admin, '/');
      await page.setViewportSize(viewport);
      for (const [what, path, ready] of pages()) {
        await page.goto(`${server.url}/#${path}`, { waitUntil: 'domcontentloaded' });
        await ready(page).waitFor();
        const [scrollWidth, clientWidth] = await page.evaluate(() => {
          const root = (
            globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }
          ).document.documentElement;
          return [root.scrollWidth, root.clientWidth];
        });
        assert.ok(
          scrollWidth <= clientWidth,
          `${what} at ${viewport.width}px is ${scrollWidth}px wide (window ${clientWidth}px)`,
        );
        const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
        assert.equal(await links.count(), 6, `${what}: six navigation links`);
        for (const link of await links.all()) {
          const box = await link.boundingBox();
          assert.ok(
            box && box.x >= 0 && box.x + box.width <= viewport.width,
            `${what}: navigation link ${await link.innerText()} is inside the window (${JSON.stringify(box)})`,
          );
        }
      }
      await page.close();
    });
  }
});
