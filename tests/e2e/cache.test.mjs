// The model cache is checked on every read: a cached file is used only when
// its length and sha256 match the seal recorded when the model made from it
// first loaded. A damaged, cut or never-sealed entry is deleted, said in
// words, downloaded again, and the answer is still the native CLI's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { env, launchPersistent, modelPhase, modelRequests, requests } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const CLI_AUTO = JSON.parse(fs.readFileSync(env('E2E_CLI_AUTO_JSON'), 'utf8'));
const URL_ = `${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=`;

let dir;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'three-answers-cache-')); });
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Instruct's ids after Ask (the page's default precision is auto). */
async function instructIds(page) {
  await page.locator('[data-testid=ask]').click();
  const a = page.locator('#panel-instruct [data-testid=answer]');
  await page.waitForFunction(() => ['done', 'failed', 'stopped'].includes(document.querySelector('#panel-instruct [data-testid=answer]')?.dataset.phase),
    null, { timeout: 180_000, polling: 100 });
  assert.equal(await a.getAttribute('data-phase'), 'done', await page.locator('#panel-instruct').textContent());
  return (await a.getAttribute('data-token-ids')).split(',').map(Number);
}

/** Changes the cached GGUF in place: `how` is 'flip' (one byte), 'cut' (half) or 'unseal' (its seal deleted). */
async function damage(page, how) {
  return page.evaluate(async (how) => {
    const models = await caches.open('three-answers-models-v1');
    const url = (await models.keys()).map((r) => r.url).find((u) => u.endsWith('.gguf'));
    if (how === 'unseal') return (await caches.open('three-answers-seals-v1')).delete(url);
    const bytes = new Uint8Array(await (await models.match(url)).arrayBuffer());
    if (how === 'flip') bytes[bytes.length >> 1] ^= 0xff;
    await models.put(url, new Response(how === 'cut' ? bytes.slice(0, bytes.length >> 1) : bytes));
    return true;
  }, how);
}

test('a damaged, cut or unsealed cache entry is said in words, downloaded again, and answers as before', { timeout: 900_000 }, async () => {
  const ctx = await launchPersistent(dir, { viewport: { width: 1000, height: 900 } });
  try {
    let page = await ctx.newPage();
    await page.goto(URL_);
    assert.match(await modelPhase(page, 'instruct'), /^ready \(/);
    assert.deepEqual(await instructIds(page), CLI_AUTO.instruct.token_ids);
    for (const [how, words] of [['flip', /is damaged: its sha256/], ['cut', /long, but was .* when it was downloaded/], ['unseal', /never confirmed complete/]]) {
      assert.ok(await damage(page, how), how);
      await requests(undefined, true);
      await page.close();
      page = await ctx.newPage();
      await page.goto(URL_);
      assert.match(await modelPhase(page, 'instruct'), /^ready \(/, how);
      const warning = await page.locator('[data-testid=model-instruct] [data-testid=model-warning]').textContent();
      assert.match(warning, words, how);
      assert.match(warning, /deleted and is downloaded again/, how);
      assert.ok(modelRequests(await requests()).some((r) => r.path.endsWith('.gguf')), `${how}: downloaded again`);
      assert.deepEqual(await instructIds(page), CLI_AUTO.instruct.token_ids, how);
    }
    // Sealed again by that load: the next visit is from the cache, with no request.
    await requests(undefined, true);
    await page.close();
    page = await ctx.newPage();
    await page.goto(URL_);
    assert.match(await modelPhase(page, 'instruct'), /^ready from cache/);
    assert.equal(await page.locator('[data-testid=model-warning]').count(), 0);
    assert.deepEqual(modelRequests(await requests()), []);
  } finally {
    await ctx.close();
  }
});
