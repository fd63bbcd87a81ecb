// What every e2e file shares: the environment scripts/test-e2e.sh sets, and
// the system's headless Chromium with the flags this machine needs (no
// background networking: its connections would be refused here).
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

/** A test's `skip` option for a test that needs `k`: the reason when it is
 * unset, but under scripts/test-e2e.sh (E2E_STRICT=1) a missing variable is
 * an error, never a silent skip. */
export const skipUnless = (k) => {
  if (process.env[k]) return false;
  if (process.env.E2E_STRICT) throw new Error(`${k} is not set, and scripts/test-e2e.sh runs every test: the script forgot to export it`);
  return `${k} not set (scripts/test-e2e.sh sets it)`;
};
export const env = (k, d) => process.env[k] ?? d ?? assert.fail(`${k} is not set (run scripts/test-e2e.sh)`);

const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];

/** A fresh headless Chromium. */
export const launchBrowser = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });

/** A headless Chromium with a profile kept in `dir` (service workers, caches). */
export const launchPersistent = (dir, options = {}) =>
  chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, ...options });
