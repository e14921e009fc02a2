/**
 * A headless Chromium for browser tests, driven by playwright-core. Chromium is the Debian package
 * (`/usr/bin/chromium`), not a Playwright download: CI machines cannot reach Playwright's CDN.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

/** Where screenshots go (git-ignored). */
export const BROWSER_ARTIFACTS_DIR = fileURLToPath(new URL('../../artifacts/browser/', import.meta.url));

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these Chromium keeps calling Google services, which on a closed network only means
  // timeouts and noise.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumExecutablePath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

/** Launches Chromium, or fails with how to install it: a missing browser must not pass silently. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumExecutablePath();
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium was not found at ${executablePath}. Install it with ` +
        '`apt-get update && apt-get install -y chromium` (Debian/Ubuntu), ' +
        'or set CHROMIUM_PATH to a Chromium or Chrome executable.',
    );
  }
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

/** The path of a screenshot in artifacts/browser/, creating the folder on first use. */
export function screenshotPath(name: string): string {
  mkdirSync(BROWSER_ARTIFACTS_DIR, { recursive: true });
  return `${BROWSER_ARTIFACTS_DIR}${name}.png`;
}

/** Empties artifacts/browser/, so what is there after a run comes from that run. */
export function clearBrowserArtifacts(): void {
  rmSync(BROWSER_ARTIFACTS_DIR, { recursive: true, force: true });
}
