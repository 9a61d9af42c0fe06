/**
 * Debian's Chromium, driven by playwright-core, for the console tests. Never downloads a browser:
 * the tests skip with a reason when /usr/bin/chromium is absent (outside CI), and fail in CI,
 * where .ci/run installs it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.PATCHLINE_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} is missing: .ci/run must install Debian's chromium package`);
  return `${CHROMIUM} is not installed (apt-get install chromium); the console tests need a real browser`;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: no sandbox. The machine has no internet: no background networking,
    // component updates, sync or first-run work, which would otherwise retry refused connections.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
