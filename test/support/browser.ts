import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

/** Debian's Chromium, which `.ci/run` installs. */
export const CHROMIUM = '/usr/bin/chromium';

/** Why a browser test is skipped here, if it is; under CI=true a missing Chromium fails instead. */
export const chromiumSkip: string | undefined = existsSync(CHROMIUM)
  ? undefined
  : process.env.CI === 'true'
    ? (() => {
        throw new Error('CI=true but Chromium is not installed (.ci/run installs Debian chromium)');
      })()
    : 'Chromium is not installed (apt-get install chromium)';

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What a reader would see go wrong on a page: console errors, exceptions, requests to anywhere else. */
export function watchProblems(page: Page, allowed: (url: string) => boolean): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('request', (request) => {
    if (!allowed(request.url())) problems.push(`network request: ${request.url()}`);
  });
  return problems;
}
