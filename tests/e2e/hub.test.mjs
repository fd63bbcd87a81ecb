// The first visit from the real Hub (issue 12), against scripts/hub-emulator.py:
// the Hub on http://localhost:P (302 to a CDN on 127.0.0.2 for LFS files, a
// same-host 307 for small ones, the tree and revision APIs), the page on
// 127.0.0.1 under its sub-path. Only `hub=` is set: the default models
// HuggingFaceTB/SmolLM2-135M(-Instruct), laid out as the official repos, bf16.
//   E2E_REAL_HUB        the emulator's Hub origin
//   E2E_CLI_BF16_JSON   the CLI's answers on the same bf16 checkpoint
//   E2E_CLI_JSON, E2E_GGUF_NAME  the CLI's f32 answers on the test GGUF, its file name
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { env, freshPage, launchBrowser, modelPhase } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_REAL_HUB');
const CLI_BF16 = JSON.parse(fs.readFileSync(env('E2E_CLI_BF16_JSON'), 'utf8'));
const CLI_F32 = JSON.parse(fs.readFileSync(env('E2E_CLI_JSON'), 'utf8'));
const GGUF = `test/SmolLM2-135M-Instruct-GGUF/${env('E2E_GGUF_NAME')}`;
const BASE = 'HuggingFaceTB/SmolLM2-135M';
const INSTRUCT = 'HuggingFaceTB/SmolLM2-135M-Instruct';


const emulator = async (path) => (await fetch(`${HUB}${path}`)).json();
const config = (query) => emulator(`/__config?${query}`);
const hubRequests = async (reset = false) => (await emulator(`/__requests${reset ? '?reset=1' : ''}`)).requests;
const pageUrl = (extra = '') => `${PAGE_URL}?hub=${encodeURIComponent(HUB)}${extra}`;
const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;
const short = (c) => c.slice(0, 7);
const step = (m) => console.log(`hub.test: ${m}`);

/** What the page would download of a checkpoint repo, from the tree API. */
async function checkpointSize(repo) {
  const files = await emulator(`/api/models/${repo}/tree/main`);
  const wanted = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
  return files.filter((f) => wanted.includes(f.path) || f.path.endsWith('.safetensors')).reduce((a, f) => a + f.size, 0);
}

const shownIds = (turn) => (turn.stop_reason === 'end_of_text' ? turn.token_ids.slice(0, -1) : turn.token_ids);

async function answerOf(page, root) {
  await page.waitForFunction((root) => {
    const all = document.querySelectorAll(`${root} [data-testid=answer]`);
    return all.length && ['done', 'failed', 'stopped'].includes(all[all.length - 1].dataset.phase);
  }, root, { timeout: 240_000, polling: 100 });
  const a = page.locator(root).locator('[data-testid=answer]').last();
  return {
    phase: await a.getAttribute('data-phase'),
    ids: (await a.getAttribute('data-token-ids')).split(',').filter(Boolean).map(Number),
    text: await a.locator('[data-testid=answer-text]').textContent(),
  };
}

function assertAnswer(name, got, want) {
  assert.equal(got.phase, 'done', `${name}: ${got.phase}`);
  assert.deepEqual(got.ids, shownIds(want), `${name}: token ids`);
  assert.equal(got.text, want.text, `${name}: text`);
}

async function ready(page, slots = ['instruct', 'foundation']) {
  for (const slot of slots) assert.match(await modelPhase(page, slot, 300_000), /^ready/, slot);
}

/** Ask, and the three answers equal the CLI's; then the chat's follow-up. */
async function askAll(page, cli) {
  await page.locator('[data-testid=ask]').click();
  assertAnswer('instruct', await answerOf(page, '#panel-instruct'), cli.instruct);
  assertAnswer('chat', await answerOf(page, '#panel-chat'), cli.chat[0]);
  assertAnswer('foundation', await answerOf(page, '#panel-foundation'), cli.foundation);
}

test('the default page from the Hub: the size first, one click, the redirect chain at one commit, answers as the CLI; a second visit makes no request', { timeout: 900_000 }, async () => {
  // The foundation repo answers 2 s late: the offer must still show both
  // models' total from the start, never the instruct model's alone.
  const { repos } = await config(`reset=1&slow=${BASE}&slow_ms=2000`);
  await hubRequests(true);
  const { context, page } = await freshPage();
  await page.goto(pageUrl());
  step('opened the default page');
  const button = page.locator('[data-testid=download-models]');
  await button.waitFor({ timeout: 60_000 });
  const offered = await button.textContent();
  step(`offered: ${offered}`);
  await config(`slow=${BASE}&slow_ms=0`);
  const size = (await checkpointSize(BASE)) + (await checkpointSize(INSTRUCT));
  assert.ok(size > 500 * 2 ** 20, `two bf16 checkpoints: ${size} bytes`);
  assert.equal(offered, `Download ${mb(size)}`, 'the first offer shown is the whole download');
  assert.match(await page.locator('[data-testid=download-offer]').textContent(), /from this computer/);
  assert.deepEqual((await hubRequests()).filter((r) => r.path.includes('/resolve/')), [], 'nothing downloaded before the click');
  await page.locator('[data-testid=question]').fill('What is the capital of France?');
  await button.click();
  step('clicked');
  await ready(page);
  step('both models ready');
  await page.locator('[data-testid=download-offer]').waitFor({ state: 'detached' });
  step('the offer is gone');
  for (const [slot, repo] of [['instruct', INSTRUCT], ['foundation', BASE]]) {
    assert.equal(await page.locator(`[data-testid=model-${slot}] [data-testid=model-commit]`).textContent(), `main @ ${short(repos[repo].main)}`);
  }
  step('commits shown');
  const reqs = await hubRequests();
  assert.deepEqual(reqs.filter((r) => r.status >= 400), [], 'no refusal');
  assert.deepEqual(reqs.filter((r) => r.referer), [], 'no Referer sent');
  for (const repo of [BASE, INSTRUCT]) {
    const resolves = reqs.filter((r) => r.server === 'hub' && r.path.startsWith(`/${repo}/resolve/`));
    assert.ok(resolves.length >= 4, `${repo}: ${JSON.stringify(resolves)}`);
    assert.match(resolves[0].path, /\/resolve\/main\/config\.json$/, `${repo}: the first file at main`);
    for (const r of resolves.slice(1)) assert.ok(r.path.includes(`/resolve/${repos[repo].main}/`), `${repo}: ${r.path} not at the commit`);
    const weights = resolves.find((r) => r.path.endsWith('/model.safetensors'));
    assert.equal(weights?.status, 302, 'the weights redirect to the CDN');
    assert.ok(reqs.some((r) => r.path.startsWith(`/api/resolve-cache/models/${repo}/${repos[repo].main}/tokenizer.json`) && r.status === 200));
    assert.ok(reqs.some((r) => r.path.startsWith(`/api/models/${repo}/tree/${repos[repo].main}`)), 'the listing at the commit (the hashes)');
  }
  assert.equal(reqs.filter((r) => r.server === 'cdn' && r.status === 200).length, 2, 'each checkpoint\'s weights once from the CDN');
  step('requests checked');
  await askAll(page, CLI_BF16);
  step('three answers as the CLI');
  await page.locator('#tab-chat').click();
  await page.locator('[data-testid=send-follow-up]').click();
  await page.waitForFunction(() => document.querySelectorAll('#panel-chat [data-testid=answer]').length === 2);
  const follow = await answerOf(page, '#panel-chat');
  assertAnswer('chat follow-up', follow, CLI_BF16.chat[1]);
  assert.match(follow.text, /Eiffel/);
  await page.close();

  // A second visit: every file from the cache, no request to the Hub or the CDN.
  await hubRequests(true);
  const again = await context.newPage();
  await again.goto(pageUrl());
  await ready(again);
  assert.equal(await again.locator('[data-testid=download-offer]').count(), 0, 'no download offer: all cached');
  assert.match(await again.locator('[data-testid=model-instruct] [data-testid=model-phase]').textContent(), /from cache/);
  await again.locator('[data-testid=ask]').click();
  assertAnswer('instruct (cached)', await answerOf(again, '#panel-instruct'), CLI_BF16.instruct);
  assert.deepEqual(await hubRequests(), [], 'a visit from the cache asks the Hub and the CDN nothing');
  await context.close();
});

test('main moves during the download: every file comes from the first commit; a later visit says main moved on and Update loads the new commit, keeping the chat', { timeout: 900_000 }, async () => {
  const { repos } = await config(`reset=1&move_main=${INSTRUCT}&after=1`);
  const [first, second] = repos[INSTRUCT].commits;
  await hubRequests(true);
  const { context, page } = await freshPage();
  await page.goto(pageUrl('&foundation='));
  await page.locator('[data-testid=download-models]').click();
  await ready(page, ['instruct']);
  assert.equal(await page.locator('[data-testid=model-instruct] [data-testid=model-commit]').textContent(), `main @ ${short(first)}`);
  const resolves = (await hubRequests()).filter((r) => r.path.startsWith(`/${INSTRUCT}/resolve/`));
  assert.deepEqual(resolves.slice(1).filter((r) => !r.path.includes(`/resolve/${first}/`)), [], 'no file of the moved main mixed in');
  assert.equal((await config('')).repos[INSTRUCT].main, second, 'main did move');
  await page.close();

  // An hour later (the pin's last check set back): one request tells main moved.
  const again = await context.newPage();
  await again.goto(`${PAGE_URL}?sw=off`);
  await again.evaluate(async () => {
    const seals = await caches.open('three-answers-seals-v1');
    for (const req of await seals.keys()) {
      if (!req.url.endsWith('.three-answers-pin')) continue;
      const pin = await (await seals.match(req)).json();
      await seals.put(req, new Response(JSON.stringify({ ...pin, checked: 0 })));
    }
  });
  await hubRequests(true);
  await again.goto(pageUrl('&foundation='));
  await ready(again, ['instruct']);
  const newer = again.locator('[data-testid=model-instruct] [data-testid=model-newer]');
  await newer.waitFor({ timeout: 30_000 });
  assert.equal(await newer.textContent(), `main has moved on to ${short(second)} since this model was downloaded (this page uses ${short(first)}). Update`);
  assert.deepEqual((await hubRequests()).map((r) => r.path), [`/api/models/${INSTRUCT}/revision/main`], 'one cheap request');
  // A chat and a typed question survive the update.
  await again.locator('[data-testid=ask]').click();
  assertAnswer('chat before the update', await answerOf(again, '#panel-chat'), CLI_BF16.chat[0]);
  await again.locator('[data-testid=question]').fill('My own question, typed before the update');
  await newer.locator('[data-testid=model-update]').click();
  await again.waitForFunction((c) => document.querySelector('[data-testid=model-instruct] [data-testid=model-commit]')?.textContent === `main @ ${c}`,
    short(second), { timeout: 300_000, polling: 200 });
  assert.equal(await again.locator('[data-testid=question]').inputValue(), 'My own question, typed before the update');
  assert.equal(await again.locator('#panel-chat [data-testid=answer]').count(), 1, 'the chat is kept');
  const keys = await again.evaluate(async () => (await (await caches.open('three-answers-models-v1')).keys()).map((r) => r.url));
  assert.ok(keys.some((u) => u.includes(`/resolve/${second}/`)), 'the new commit cached');
  assert.deepEqual(keys.filter((u) => u.includes(`/resolve/${first}/`)), [], 'the old commit\'s files dropped');
  await context.close();
});

test('a GGUF through the CDN: commit from the revision API, sha256 from the tree, a body cut midway resumed with Range through the redirect', { timeout: 600_000 }, async () => {
  const { repos } = await config(`reset=1&cut=${GGUF}&cut_times=1`);
  const commit = repos['test/SmolLM2-135M-Instruct-GGUF'].main;
  await hubRequests(true);
  const { context, page } = await freshPage();
  await page.goto(pageUrl(`&instruct=${encodeURIComponent(GGUF)}&foundation=&precision=f32`));
  await page.locator('[data-testid=download-models]').click();
  await ready(page, ['instruct']);
  const reqs = await hubRequests();
  assert.equal(reqs[0]?.path, '/api/models/test/SmolLM2-135M-Instruct-GGUF/tree/main', 'the size from the listing');
  assert.ok(reqs.some((r) => r.path === '/api/models/test/SmolLM2-135M-Instruct-GGUF/revision/main'), 'the commit from the API');
  const resumed = reqs.filter((r) => r.range && r.range.startsWith('bytes='));
  assert.ok(resumed.some((r) => r.server === 'hub' && r.status === 302 && r.path.includes(`/resolve/${commit}/`)), JSON.stringify(reqs));
  assert.ok(resumed.some((r) => r.server === 'cdn' && r.status === 206), 'the CDN resumed the body');
  await page.locator('[data-testid=ask]').click();
  assertAnswer('instruct (f32 GGUF)', await answerOf(page, '#panel-instruct'), CLI_F32.instruct);
  assert.equal((await answerOf(page, '#panel-instruct')).text, 'The capital of France is Paris.');
  await context.close();
});

test('a window that keeps no files (Chromium\'s incognito-like context refuses a 257 MB cache entry): said in words, and the model answers from memory', { timeout: 600_000 }, async () => {
  await config('reset=1');
  const browser = await launchBrowser();
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(pageUrl('&foundation='));
    await page.locator('[data-testid=download-models]').click();
    await ready(page, ['instruct']);
    const warning = await page.locator('[data-testid=model-instruct] [data-testid=model-warning]').textContent();
    assert.match(warning, /^This window keeps no files \(a private window, or storage is switched off: .*\), so model\.safetensors will be downloaded again next time\. The model runs from memory now\.$/);
    assert.match(await page.locator('[data-testid=model-instruct] [data-testid=model-commit]').textContent(), /^main @ [0-9a-f]{7}$/);
    await page.locator('[data-testid=ask]').click();
    assertAnswer('instruct (from memory)', await answerOf(page, '#panel-instruct'), CLI_BF16.instruct);
  } finally {
    await browser.close();
  }
});

/** Opens the page with only the instruct model, types a question, clicks
 * Download when offered, and returns the instruct row's failure words. */
async function failure(extra, query) {
  await config(`reset=1&${query}`);
  await hubRequests(true);
  const { context, page } = await freshPage();
  await page.goto(pageUrl(`&foundation=${extra}`));
  await page.locator('[data-testid=question]').fill('A question typed while it fails');
  const offered = page.locator('[data-testid=download-models]');
  await Promise.race([offered.waitFor({ timeout: 60_000 }).catch(() => {}), modelPhase(page, 'instruct', 60_000).catch(() => {})]);
  if (await offered.count()) await offered.click();
  const phase = await modelPhase(page, 'instruct', 300_000);
  assert.equal(await page.locator('[data-testid=question]').inputValue(), 'A question typed while it fails', 'typed text kept');
  const keys = await page.evaluate(async () => (await (await caches.open('three-answers-models-v1')).keys()).map((r) => r.url));
  await context.close();
  return { phase, keys, reqs: await hubRequests() };
}

test('every Hub refusal in words, typed text kept: tampered LFS and small files, 429, 401, 403, no such repo, no such file', { timeout: 900_000 }, async () => {
  let r = await failure('', `tamper=${INSTRUCT}/model.safetensors`);
  assert.match(r.phase, /^failed: model\.safetensors from .* is corrupt: its sha256 is [0-9a-f]{64}, but the server says it should be [0-9a-f]{64}/);
  assert.deepEqual(r.keys.filter((u) => u.endsWith('model.safetensors')), [], 'a tampered body is not cached');
  r = await failure('', `tamper=${INSTRUCT}/tokenizer_config.json`);
  assert.match(r.phase, /^failed: tokenizer_config\.json from .* is corrupt: its git blob hash is [0-9a-f]{40}, but the hub's file list says [0-9a-f]{40}/);
  // The listing takes the first 429 (the size is then unknown), the first file the second.
  r = await failure('', 'rate_limit=2&retry_after=1');
  assert.match(r.phase, /^ready/, 'one 429 with a short Retry-After is waited out');
  assert.ok(r.reqs.some((q) => q.status === 429 && q.path.includes('/resolve/')), JSON.stringify(r.reqs));
  r = await failure('', 'rate_limit=100&retry_after=120');
  assert.match(r.phase, /^failed: The hub is limiting requests from your address \(HTTP 429.*again in about 2 minutes/);
  r = await failure('', `auth=${INSTRUCT}&auth_status=401`);
  assert.match(r.phase, /needs a login \(HTTP 401.*which this page does not do/);
  r = await failure('', `auth=${INSTRUCT}&auth_status=403`);
  assert.match(r.phase, /needs a login \(HTTP 403/);
  r = await failure('&instruct=HuggingFaceTB/No-Such-Model', '');
  assert.match(r.phase, /There is no model repo HuggingFaceTB\/No-Such-Model on this hub \(HTTP 404, repository not found\)/);
  r = await failure(`&instruct=${INSTRUCT}/missing.gguf`, '');
  assert.match(r.phase, /The repo HuggingFaceTB\/SmolLM2-135M-Instruct exists but has no file missing\.gguf at revision main \(HTTP 404, entry not found\)/);
  await config('reset=1');
});
