// A crashed worker is restarted, the page says so, and nothing typed or
// answered is lost. The crash is real from the page's side: an uncaught error
// thrown inside the worker fires the Worker's `error` event, exactly as a wasm
// trap (panic, out of memory) does. Same environment as page.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, launchBrowser } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');

// No foundation model: only the instruct one loads (faster), and the Foundation
// tab must say why it has no answer.
const url = `${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=&q=${encodeURIComponent('Name three primary colors.')}`;

let browser, page;

before(async () => {
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
});

after(async () => {
  await browser?.close();
});

const modelReady = () => page.waitForFunction(() => {
  const p = document.querySelector('[data-testid=model-instruct] [data-testid=model-phase]');
  return p && /^ready/.test(p.textContent);
}, null, { timeout: 240_000, polling: 200 });

const chatDone = (n) => page.waitForFunction((n) => {
  const all = document.querySelectorAll('#panel-chat [data-testid=answer]');
  return all.length === n && ['done', 'failed', 'stopped'].includes(all[n - 1].dataset.phase);
}, n, { timeout: 240_000, polling: 100 });

test('a crashed worker is restarted, the page says so, and the chat survives', { timeout: 600_000 }, async () => {
  await page.goto(url);
  await modelReady();
  assert.equal(await page.locator('[data-testid=question]').inputValue(), 'Name three primary colors.');
  await page.locator('[data-testid=ask]').click();
  await chatDone(1);
  const firstAnswer = await page.locator('#panel-chat [data-testid=answer-text]').first().textContent();
  assert.ok(firstAnswer.length > 0, 'the first chat answer has text');
  await page.locator('[data-testid=question]').fill('My own unsent question');

  // Crash the worker.
  // The engine's worker (either build), not the threaded build's helper threads.
  const workers = page.workers().filter((w) => /worker(_mt)?_loader\.js/.test(w.url()));
  assert.equal(workers.length, 1, `the page runs one engine worker: ${page.workers().map((w) => w.url())}`);
  await Promise.all(workers.map((w) => w.evaluate(() => { setTimeout(() => { throw new Error('simulated crash'); }, 0); })));

  await page.locator('[data-testid=notice]').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('[data-testid=notice]').textContent(), /restarted/);
  // Nothing was lost: the typed question and the chat so far.
  assert.equal(await page.locator('[data-testid=question]').inputValue(), 'My own unsent question');
  assert.equal(await page.locator('#panel-chat [data-testid=answer-text]').first().textContent(), firstAnswer);
  assert.equal(await page.locator('[data-testid=chat-user]').first().textContent(), 'Name three primary colors.');

  // The new worker loads the model again and the conversation goes on.
  await modelReady();
  await page.locator('#tab-chat').click();
  await page.locator('[data-testid=follow-up]').fill('Which of them is the color of the sky?');
  await page.locator('[data-testid=send-follow-up]').click();
  await chatDone(2);
  const second = page.locator('#panel-chat [data-testid=answer]').nth(1);
  assert.equal(await second.getAttribute('data-phase'), 'done');
  assert.ok((await second.locator('[data-testid=answer-text]').textContent()).length > 0);
  // The Foundation tab explains that no foundation model was given.
  await page.locator('#tab-foundation').click();
  assert.ok(await page.locator('[data-testid=foundation-problem]').count() > 0, 'the Foundation tab says why it is empty');
});
