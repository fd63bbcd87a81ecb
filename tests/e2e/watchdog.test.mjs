// A worker that stops responding while an answer runs is stopped and
// restarted by the page's watchdog (`?watchdog=5`: 5 s of silence here, 30 s
// by default), which names the model at work; the answer fails in words,
// nothing typed is lost. Two real hangs: the worker's event loop blocked from
// outside mid-answer, and a model whose chat template never finishes (one
// instruction walking 4e9 items, which template fuel does not see).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, launchBrowser, modelPhase } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const HANGING = 'test/Hanging-Template';
const url = (instruct) => `${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(instruct)}&foundation=&watchdog=5`;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const ended = (page, sel) => page.waitForFunction((sel) => ['done', 'failed', 'stopped'].includes(document.querySelector(sel)?.dataset.phase),
  sel, { timeout: 120_000, polling: 100 });
const notice = async (page, re) => {
  await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('[data-testid=notice]')?.textContent ?? ''), re.source,
    { timeout: 60_000, polling: 200 });
  return page.locator('[data-testid=notice]').textContent();
};
const dismiss = (page) => page.locator('[data-testid=notice] button').click();
const escaped = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Blocks the worker's event loop from outside, as a loop in wasm would. */
function hangWorker(page) {
  for (const w of page.workers()) w.evaluate(() => { const end = Date.now() + 600_000; while (Date.now() < end); }).catch(() => {});
}

test('a worker hung mid-answer is restarted, naming the model; healthy answers in between keep it restarting', { timeout: 600_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(url(SPEC));
  // Long answers, so the hang lands while one is being written.
  await page.locator('.settings > summary').click();
  await page.locator('#max-new-tokens').fill('400');
  await page.locator('#max-new-tokens').dispatchEvent('change');
  for (let round = 1; round <= 4; round++) {
    assert.match(await modelPhase(page, 'instruct'), /^ready/, `round ${round}`);
    const question = `Round ${round}: write a long story about a dragon who learns to bake bread.`;
    await page.locator('[data-testid=question]').fill(question);
    await page.locator('[data-testid=ask]').click();
    await page.waitForFunction(() => ['reading', 'streaming'].includes(document.querySelector('#panel-instruct [data-testid=answer]')?.dataset.phase), null, { timeout: 120_000, polling: 20 });
    const started = Date.now();
    hangWorker(page);
    const words = await notice(page, /stopped responding/);
    const waited = (Date.now() - started) / 1000;
    assert.ok(waited >= 4 && waited < 20, `restarted after ${waited} s`);
    assert.match(words, new RegExp(`stopped responding for \\d+ s while working with ${escaped(SPEC)}`));
    assert.match(words, /It was restarted/, `round ${round}: ${words}`);
    await ended(page, '#panel-instruct [data-testid=answer]');
    assert.equal(await page.locator('#panel-instruct [data-testid=answer]').getAttribute('data-phase'), 'failed');
    assert.match(await page.locator('#panel-instruct .error').textContent(), /stopped responding/);
    assert.equal(await page.locator('[data-testid=question]').inputValue(), question);
    await dismiss(page);
    // A healthy answer after each restart resets the count: four hangs, never "not started again".
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    await page.locator('[data-testid=question]').fill('What is the capital of France?');
    await page.locator('[data-testid=ask]').click();
    await ended(page, '#panel-instruct [data-testid=answer]');
    assert.equal(await page.locator('#panel-instruct [data-testid=answer]').getAttribute('data-phase'), 'done', `round ${round}`);
  }
  await page.close();
});

test('a chat template that never finishes: each Ask fails in words, and after 3 restarts in a row the page stops and says so', { timeout: 600_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(url(HANGING));
  for (let n = 1; n <= 4; n++) {
    assert.match(await modelPhase(page, 'instruct'), /^ready/, `attempt ${n}`);
    await page.locator('[data-testid=ask]').click();
    const words = await notice(page, /stopped responding/);
    assert.match(words, new RegExp(`working with ${escaped(HANGING)}.*chat template`), words);
    await ended(page, '#panel-instruct [data-testid=answer]');
    assert.equal(await page.locator('#panel-instruct [data-testid=answer]').getAttribute('data-phase'), 'failed');
    if (n <= 3) {
      assert.match(words, /It was restarted/);
      await dismiss(page);
    } else {
      assert.match(words, /4 times in a row, so the worker was not started again/);
    }
  }
  // No worker: Ask says so at once instead of waiting forever.
  await dismiss(page);
  await page.locator('[data-testid=ask]').click();
  assert.match(await notice(page, /worker is stopped/), /reload the page/);
  assert.notEqual(await page.locator('#panel-instruct [data-testid=answer]').getAttribute('data-phase'), 'waiting');
  await page.close();
});
