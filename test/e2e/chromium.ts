// Headless Chromium (Debian's, driven by playwright-core) for the console's end-to-end tests, and
// Keycloak's own sign-in form as a person fills it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Chromium {
  browser: BrowserContext;
  /** The first tab. */
  page: Page;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** A browser with a fresh profile of its own: nobody signed in, no cookies. */
export async function launchChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'agate-chromium-'));
  try {
    const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
    const page = browser.pages()[0] ?? (await browser.newPage());
    return { browser, page, close: async () => { await browser.close(); rmSync(profile, { recursive: true, force: true }); } };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** On Keycloak's login form: fills it in as `user` and waits for the console to show who signed in. */
export async function keycloakLogin(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.waitForSelector('#username');
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('#kc-login');
  await page.waitForSelector('#user-name');
}
