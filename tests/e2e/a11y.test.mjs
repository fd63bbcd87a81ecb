// Every reader (issue 14): axe-core finds no violation at any level on every
// view (each tab, the token view, settings, storage, a chat with a
// follow-up), in light and dark mode, at desktop and phone width; the
// answers are on the first screen once the models are ready; and where a
// browser lacks something the page needs, it says what and what to use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { env, launchBrowser, launchPersistent, modelPhase } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
// Both slots from the one test file: two rows, both ready.
const URL_ = `${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=${encodeURIComponent(SPEC)}`;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** axe-core's violations on the page as it is now (every rule, every impact). */
async function violations(page, view) {
  await page.evaluate(AXE); // evaluated by the test runner: the page's CSP does not apply
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`));
  return found.map((f) => `${view}: ${f}`);
}

async function answered(page, panel, n = 1) {
  await page.waitForFunction(({ panel, n }) => {
    const all = document.querySelectorAll(`#panel-${panel} [data-testid=answer]`);
    return all.length >= n && ['done', 'failed', 'stopped'].includes(all[n - 1].dataset.phase);
  }, { panel, n }, { timeout: 180_000, polling: 100 });
}

for (const [scheme, width, height] of [['light', 1280, 800], ['dark', 1280, 800], ['light', 390, 844], ['dark', 390, 844]]) {
  test(`no accessibility violations on any view: ${scheme}, ${width}×${height}; the answers are on the first screen`, { timeout: 300_000 }, async () => {
    const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme });
    const page = await context.newPage();
    await page.goto(URL_);
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    assert.match(await modelPhase(page, 'foundation'), /^ready/);
    // Ready models fold to one line each: the question and the tabs fit the first screen.
    const tabs = await page.locator('[role=tablist]').boundingBox();
    assert.ok(tabs.y + tabs.height <= height, `the tab list ends at ${tabs.y + tabs.height}px, below the first screen (${height}px)`);
    assert.equal(await page.locator('#more-model-instruct').isHidden(), true, 'the ready model row is folded');
    await page.locator('[data-testid=model-instruct] [data-testid=model-details]').click();
    assert.equal(await page.locator('#more-model-instruct').isVisible(), true, '"details" opens it again');
    const found = await violations(page, 'models open');
    await page.locator('[data-testid=model-instruct] [data-testid=model-details]').click();

    await page.locator('[data-testid=ask]').click();
    await answered(page, 'instruct');
    await answered(page, 'foundation');
    await answered(page, 'chat');
    // The finished answer is announced once, politely, not token by token.
    const announce = page.locator('#panel-instruct [data-testid=announce]');
    assert.equal(await announce.getAttribute('aria-live'), 'polite');
    assert.match(await announce.textContent(), /^Answer: /);
    for (const tab of ['foundation', 'instruct', 'chat', 'compare', 'prompt']) {
      await page.locator(`#tab-${tab}`).click();
      if (tab === 'foundation' || tab === 'instruct') await page.locator(`#panel-${tab} [data-testid=toggle-candidates]`).check();
      found.push(...await violations(page, `tab ${tab}`));
    }
    await page.locator('[data-testid=toggle-tokens]').check();
    found.push(...await violations(page, 'prompt tokens'));
    await page.locator('#tab-chat').click();
    await page.locator('[data-testid=send-follow-up]').click();
    await answered(page, 'chat', 2);
    await page.locator('.system summary').click();
    found.push(...await violations(page, 'chat with a follow-up'));
    await page.locator('.settings > summary').click();
    await page.locator('[data-testid=storage] summary').click();
    await page.locator('[data-testid=cached-model]').first().waitFor({ timeout: 10_000 });
    found.push(...await violations(page, 'settings and storage open'));
    assert.deepEqual(found, [], `axe-core violations:\n${found.join('\n')}`);
    await context.close();
  });
}

test('no navigator.storage: the storage panel says what it cannot show, and the models still load', { timeout: 180_000 }, async () => {
  const context = await browser.newContext();
  await context.addInitScript(() => { delete Navigator.prototype.storage; });
  const page = await context.newPage();
  await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=`);
  assert.match(await modelPhase(page, 'instruct'), /^ready/);
  await page.locator('[data-testid=storage] summary').click();
  assert.match(await page.locator('[data-testid=no-storage-api]').textContent(), /no navigator\.storage.*cannot be shown.*Cached models still work/s);
  assert.equal(await page.locator('[data-testid=persist]').isDisabled(), true);
  await context.close();
});

test('no WebAssembly SIMD: the page says what is missing and what to use, never a blank page', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    const validate = WebAssembly.validate;
    // The page's probe uses an i8x16 instruction: as a browser without SIMD, refuse it.
    WebAssembly.validate = (bytes) => (bytes.length === 31 && bytes[26] === 253 ? false : validate(bytes));
  });
  const page = await context.newPage();
  await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=`);
  const words = await page.locator('[data-testid=unsupported]').textContent({ timeout: 10_000 });
  assert.match(words, /lacks WebAssembly SIMD.*current Chrome, Edge or Firefox, or Safari 16\.4/);
  await context.close();
});

test('no FileReaderSync in workers: the model row says what is missing and what to use', { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  // The worker's own script, served with the global removed first (as a browser without it).
  // Either build's loader (the page is cross-origin isolated here, so the threaded one runs).
  await context.route(/worker(_mt)?_loader\.js/, async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: `self.FileReaderSync = undefined;\n${await response.text()}` });
  });
  const page = await context.newPage();
  await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=&sw=off&cache=off`);
  assert.match(await modelPhase(page, 'instruct'), /^failed.*no FileReaderSync.*current Chrome, Edge or Firefox, or Safari 16\.4/);
  await context.close();
});

test('installable as an app: a manifest with icons, and Chromium reports no installability error', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'three-answers-install-'));
  const context = await launchPersistent(dir);
  try {
    const page = await context.newPage();
    await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=`);
    await page.waitForFunction(() => navigator.serviceWorker?.controller || null, null, { timeout: 30_000 }).catch(() => page.reload());
    await page.waitForFunction(() => navigator.serviceWorker?.controller, null, { timeout: 30_000 });
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, []);
    const manifest = await (await page.request.get(new URL('manifest.webmanifest', page.url()).href)).json();
    assert.ok(manifest.icons.some((i) => i.sizes === '512x512') && manifest.display === 'standalone', JSON.stringify(manifest));
  } finally {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
