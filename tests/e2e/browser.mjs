// What every e2e file shares: the environment scripts/test-e2e.sh sets, and
// the system's headless Chromium with the flags this machine needs (no
// background networking: its connections would be refused here).
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const env = (k, d) => process.env[k] ?? d ?? assert.fail(`${k} is not set (run scripts/test-e2e.sh)`);

const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];

/** A fresh headless Chromium. */
export const launchBrowser = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });

/** A headless Chromium with a profile kept in `dir` (service workers, caches). */
export const launchPersistent = (dir, options = {}) =>
  chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, ...options });
