// End-to-end: model delivery and offline (issue 4). The browser's cache of
// model files, download failures in words (404, a body cut midway, a wrong
// sha256, a full quota), local files through the file input, a mirror folder
// next to the page (?hub=./models), the offline app shell (service worker),
// the storage panel. Run by scripts/test-e2e.sh, which also passes:
//   E2E_ORIGIN           the devserver (requests at /__requests, knobs at /__config)
//   E2E_MIRROR_PAGE_URL  a copy of dist/ with models/ made by scripts/make-mirror.sh
//   E2E_MODEL_PATH, E2E_DIST, E2E_ROOT  to start a server of our own (offline test)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ISOLATION_OFF, askInstruct, assertEngineMode, engineStatus, env, isolationQuery, launchBrowser, launchPersistent, modelPhase, modelRequests, pageState, recordContext, requests, skipUnless, startServer } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const ORIGIN = env('E2E_ORIGIN');
const MIRROR_PAGE_URL = env('E2E_MIRROR_PAGE_URL');
const MODEL_PATH = env('E2E_MODEL_PATH');
const DIST = env('E2E_DIST');
const ROOT = env('E2E_ROOT');
const SHOTS = env('E2E_SCREENSHOTS', path.resolve(import.meta.dirname, '../../target/screenshots'));
const FILE = SPEC.split('/').slice(2).join('/');

const q = (o) => Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
const pageUrl = (o, base = PAGE_URL) => `${base}?${q({ hub: HUB, instruct: SPEC, foundation: '', ...isolationQuery, ...o })}`;

let browser;
const tmpDirs = [];
before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

async function persistentContext() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'three-answers-e2e-'));
  tmpDirs.push(dir);
  return launchPersistent(dir, { viewport: { width: 1000, height: 900 } });
}

async function config(query) {
  return (await fetch(`${ORIGIN}/__config?${query}`)).json();
}

test('cache: a second visit loads from the cache with zero model requests; the storage panel lists and deletes it', { timeout: 600_000 }, async () => {
  const ctx = await persistentContext();
  try {
    const page = await ctx.newPage();
    await requests(ORIGIN, true);
    await page.goto(pageUrl({}));
    assert.match(await modelPhase(page, 'instruct'), /^ready \(/);
    assert.equal(await page.locator('[data-testid=model-instruct] [data-testid=file-progress]').getAttribute('data-origin'), 'downloading');
    const first = modelRequests(await requests());
    assert.ok(first.length >= 1, 'the first visit downloads');
    // Second visit: a new page in the same browser profile.
    await requests(ORIGIN, true);
    const again = await ctx.newPage();
    await page.close();
    await again.goto(pageUrl({}));
    const phase = await modelPhase(again, 'instruct');
    assert.match(phase, /^ready from cache/);
    assert.equal(await again.locator('[data-testid=model-instruct] [data-testid=file-progress]').getAttribute('data-origin'), 'from cache');
    assert.match(await again.locator('[data-testid=model-instruct] .bytes').textContent(), /from cache/);
    await askInstruct(again);
    assert.deepEqual(modelRequests(await requests()), [], 'no model requests on the second visit');
    // Storage panel: lists the model with its size; Delete removes it.
    await again.locator('[data-testid=storage] summary').click();
    const row = again.locator('[data-testid=cached-model]').filter({ hasText: 'SmolLM2-135M-Instruct-GGUF' });
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.textContent(), /MB/);
    assert.match(await again.locator('[data-testid=storage]').textContent(), /This site uses .* of the .* the browser allows/);
    await again.locator('[data-testid=persist]').click();
    // The page says what the browser decided (headless Chromium may refuse).
    const granted = await again.evaluate(() => navigator.storage.persist());
    await again.waitForFunction((granted) => document.querySelector('[data-testid=persisted]').textContent.startsWith(granted ? 'Persistent:' : 'Not persistent:'),
      granted, { timeout: 10_000 });
    await again.screenshot({ path: path.join(SHOTS, 'storage.png'), fullPage: true });
    await row.locator('[data-testid=delete-cached]').click();
    await again.waitForFunction(() => /Deleted/.test(document.querySelector('[data-testid=storage-message]')?.textContent ?? ''), null, { timeout: 10_000 });
    assert.equal(await again.locator('[data-testid=cached-model]').count(), 0);
  } finally {
    await ctx.close();
  }
});

test('a checkpoint repo: every file with a total for the set; the second visit makes zero requests (the missing optional file remembered)', { timeout: 600_000 }, async () => {
  const ctx = await persistentContext();
  try {
    const page = await ctx.newPage();
    const url = pageUrl({ foundation: 'test/SmolLM2-135M-f32' });
    await requests(ORIGIN, true);
    await page.goto(url);
    assert.match(await modelPhase(page, 'foundation'), /^ready \(/);
    const files = await page.locator('[data-testid=model-foundation] [data-testid=file-progress] .file').allTextContents();
    assert.deepEqual(files, ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
    assert.match(await page.locator('[data-testid=model-foundation] [data-testid=total-progress]').textContent(), /^all 4 files: 51\d\.\d MB \/ 51\d\.\d MB$/);
    const first = modelRequests(await requests()).filter((r) => r.path.includes('SmolLM2-135M-f32'));
    assert.ok(first.some((r) => r.path.endsWith('/generation_config.json') && r.status === 404), 'the optional file was asked for once');
    await requests(ORIGIN, true);
    const again = await ctx.newPage();
    await page.close();
    await again.goto(url);
    assert.match(await modelPhase(again, 'foundation'), /^ready from cache/);
    assert.match(await modelPhase(again, 'instruct'), /^ready from cache/);
    assert.deepEqual(modelRequests(await requests()), [], 'no model requests on the second visit');
    await again.locator('[data-testid=ask]').click();
    await again.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('#panel-foundation [data-testid=answer]')?.dataset.phase),
      null, { timeout: 180_000, polling: 100 });
    assert.equal(await again.locator('#panel-foundation [data-testid=answer]').getAttribute('data-phase'), 'done');
  } finally {
    await ctx.close();
  }
});

test('a full quota: says the file was not cached, and the model still answers from memory', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ cache: 'full' }));
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    const warning = await page.locator('[data-testid=model-instruct] [data-testid=model-warning]').textContent();
    assert.match(warning, /storage is full/);
    assert.match(warning, /runs from memory/);
    assert.match(warning, new RegExp(FILE.replace(/\./g, '\\.')));
    await askInstruct(page);
    await page.screenshot({ path: path.join(SHOTS, 'quota-full.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

test('download progress: bytes, speed and time left while a slow download runs', { timeout: 300_000 }, async () => {
  await config('reset=1');
  await config(`slow=${encodeURIComponent('Instruct-GGUF')}&rate=${16 << 20}`);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ cache: 'off' }));
    const bytes = page.locator('[data-testid=model-instruct] [data-testid=file-progress] .bytes');
    await page.waitForFunction(() => /MB\/s, \d+ s left/.test(document.querySelector('[data-testid=model-instruct] .bytes')?.textContent ?? ''),
      null, { timeout: 30_000, polling: 100 });
    const during = await bytes.textContent();
    assert.match(during, /^[\d.]+ MB \/ 93\.8 MB · [\d.]+ MB\/s, \d+ s left$/);
    await page.screenshot({ path: path.join(SHOTS, 'downloading.png') });
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    assert.match(await bytes.textContent(), /^93\.8 MB \/ 93\.8 MB · downloaded$/);
    console.log(`progress while downloading: ${during}`);
  } finally {
    await ctx.close();
    await config('reset=1');
  }
});

test('download progress without Content-Length: bytes and speed, "size unknown", then the real size', { timeout: 300_000 }, async () => {
  await config('reset=1');
  await config(`slow=${encodeURIComponent('Instruct-GGUF')}&rate=${24 << 20}`);
  await config(`nolength=${encodeURIComponent('Instruct-GGUF')}`);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ cache: 'off' }));
    const bytes = page.locator('[data-testid=model-instruct] [data-testid=file-progress] .bytes');
    await page.waitForFunction(() => /size unknown\) · [\d.]+ MB\/s$/.test(document.querySelector('[data-testid=model-instruct] .bytes')?.textContent ?? ''),
      null, { timeout: 30_000, polling: 100 });
    console.log(`progress without a length: ${await bytes.textContent()}`);
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    assert.match(await bytes.textContent(), /^93\.8 MB \/ 93\.8 MB · downloaded$/);
    await askInstruct(page);
  } finally {
    await ctx.close();
    await config('reset=1');
  }
});

test('download failures in words: 404 names the repo and file; typed text and answers are kept', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ foundation: 'test/No-Such-Repo/missing.gguf', cache: 'off' }));
    const f = await modelPhase(page, 'foundation');
    assert.match(f, /missing\.gguf was not found at .*test\/No-Such-Repo\/resolve\/main\/missing\.gguf \(HTTP 404\)/);
    assert.match(f, /Check the model name/);
    await page.locator('[data-testid=question]').fill('What is the capital of France? (typed)');
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    await askInstruct(page);
    await page.locator('#tab-foundation').click();
    assert.match(await page.locator('[data-testid=foundation-problem]').textContent(), /HTTP 404/);
    assert.equal(await page.locator('[data-testid=question]').inputValue(), 'What is the capital of France? (typed)');
  } finally {
    await ctx.close();
  }
});

test('a hub that does not answer: says so, and suggests local files or a mirror', { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ hub: 'http://127.0.0.1:9/hub', cache: 'off' }));
    const i = await modelPhase(page, 'instruct', 60_000);
    assert.match(i, /^failed: Could not download .*: the server did not answer, or it does not allow this page to read it \(CORS\)/);
    assert.match(i, /Use files from this computer.*mirror folder next to the page \(\?hub=\.\/models\)/);
  } finally {
    await ctx.close();
  }
});

test('a body cut midway is resumed with a Range request; the sha256 the server states is checked', { timeout: 300_000 }, async () => {
  await config('reset=1');
  await config(`cut=${encodeURIComponent('Instruct-GGUF')}&cut_times=1`);
  await config(`etag=${encodeURIComponent('Instruct-GGUF')}&etag_mode=right`);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await requests(ORIGIN, true);
    await page.goto(pageUrl({ cache: 'off' }));
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    const reqs = modelRequests(await requests());
    assert.ok(reqs.some((r) => r.range && /^bytes=\d+-$/.test(r.range) && r.status === 206), `a resumed request: ${JSON.stringify(reqs)}`);
    await askInstruct(page);
  } finally {
    await ctx.close();
    await config('reset=1');
  }
});

test('a body cut every time: gives up after a few resumes and says so; the other model still answers', { timeout: 300_000 }, async () => {
  await config('reset=1');
  await config(`cut=${encodeURIComponent('Cut-GGUF')}&cut_times=100`);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ foundation: `test/Cut-GGUF/${FILE}`, cache: 'off' }));
    const f = await modelPhase(page, 'foundation');
    assert.match(f, /download of .* broke off after/);
    assert.match(f, /Resuming from where it stopped was tried 3 time/);
    assert.match(f, /local files or a mirror/);
    await askInstruct(page);
  } finally {
    await ctx.close();
    await config('reset=1');
  }
});

for (const [how, mode] of [['stated in X-Linked-Etag', 'wrong'], ['stated by the tree API (lfs.oid)', 'tree-wrong']]) {
  test(`a wrong sha256 ${how}: refused with words, and not cached`, { timeout: 300_000 }, async () => {
    await config('reset=1');
    await config(`etag=${encodeURIComponent('Corrupt-GGUF')}&etag_mode=${mode}`);
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await requests(ORIGIN, true);
      await page.goto(pageUrl({ foundation: `test/Corrupt-GGUF/${FILE}` }));
      const f = await modelPhase(page, 'foundation');
      assert.match(f, /is corrupt: its sha256 is [0-9a-f]{64}, but the server says it should be 0{10}/);
      assert.match(f, /not cached/);
      assert.match(await modelPhase(page, 'instruct'), /^ready/);
      const trees = (await requests()).filter((r) => r.path.includes('/api/models/'));
      if (mode === 'tree-wrong') assert.ok(trees.some((r) => r.path.includes('Corrupt-GGUF/tree/main')), 'the tree listing was asked for');
      await askInstruct(page);
      await page.locator('[data-testid=storage] summary').click();
      await page.locator('[data-testid=cached-model]').first().waitFor({ timeout: 10_000 });
      const listed = await page.locator('[data-testid=cached-models]').textContent();
      assert.match(listed, /SmolLM2-135M-Instruct-GGUF/);
      assert.doesNotMatch(listed, /Corrupt-GGUF/);
    } finally {
      await ctx.close();
      await config('reset=1');
    }
  });
}

test('local files: a GGUF picked through the file input answers, nothing uploaded', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ instruct: 'test/Not-There/none.gguf', cache: 'off' }));
    assert.match(await modelPhase(page, 'instruct'), /^failed: none\.gguf was not found/);
    assert.match(await page.locator('.models').textContent(), /nothing is uploaded/);
    await requests(ORIGIN, true);
    await page.locator('[data-testid=model-instruct] [data-testid=local-files]').setInputFiles(MODEL_PATH);
    await page.waitForFunction(() => /^local: /.test(document.querySelector('[data-testid=model-instruct] .spec').textContent));
    assert.match(await modelPhase(page, 'instruct'), /^ready from local files/);
    await askInstruct(page);
    assert.deepEqual(modelRequests(await requests()), [], 'nothing fetched or uploaded');
    await page.screenshot({ path: path.join(SHOTS, 'local-file.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

test('local files: a checkpoint folder (config, tokenizer, safetensors) picked for the foundation slot answers', { timeout: 300_000, skip: skipUnless('E2E_CHECKPOINT') }, async () => {
  const dir = process.env.E2E_CHECKPOINT;
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(pageUrl({ cache: 'off' }));
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    // A wrong pick first: the words say what is missing.
    await page.locator('[data-testid=model-foundation] [data-testid=local-files]').setInputFiles(path.join(dir, 'config.json'));
    assert.match(await modelPhase(page, 'foundation'), /^failed: These files are not a model: missing tokenizer\.json, model\.safetensors/);
    // Dropping files works like picking them (here: one JSON file, which is not a model).
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['{}'], 'tokenizer.json', { type: 'application/json' }));
      const row = document.querySelector('[data-testid=model-foundation]');
      row.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      row.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => /^local: tokenizer\.json/.test(document.querySelector('[data-testid=model-foundation] .spec').textContent));
    assert.match(await modelPhase(page, 'foundation'), /^failed: These files are not a model: missing config\.json, model\.safetensors/);
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    const before = await page.locator('[data-testid=model-foundation] [data-testid=model-phase]').textContent();
    await page.locator('[data-testid=model-foundation] [data-testid=local-files]').setInputFiles(files);
    // Not the wrong pick's failure still on screen: the new files' outcome.
    await page.waitForFunction((before) => {
      const t = document.querySelector('[data-testid=model-foundation] [data-testid=model-phase]').textContent;
      return t !== before && /^preparing|^ready|^failed/.test(t);
    }, before);
    assert.match(await modelPhase(page, 'foundation'), /^ready from local files/);
    assert.match(await page.locator('[data-testid=model-foundation] [data-testid=total-progress]').textContent(), new RegExp(`^all ${files.length} files: 51\\d\\.\\d MB / 51\\d\\.\\d MB$`));
    await page.locator('[data-testid=ask]').click();
    await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('#panel-foundation [data-testid=answer]')?.dataset.phase),
      null, { timeout: 180_000, polling: 100 });
    assert.equal(await page.locator('#panel-foundation [data-testid=answer]').getAttribute('data-phase'), 'done',
      await page.locator('#panel-foundation').textContent());
    await page.screenshot({ path: path.join(SHOTS, 'local-checkpoint.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

test('mirror: ?hub=./models next to the page answers', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const origin = new URL(MIRROR_PAGE_URL).origin;
    await requests(origin, true);
    await page.goto(`${MIRROR_PAGE_URL}?${q({ hub: './models', instruct: `local/SmolLM2-135M-Instruct-GGUF/${FILE}`, foundation: '', ...isolationQuery })}`);
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    await askInstruct(page);
    const reqs = await requests(origin);
    assert.ok(reqs.some((r) => r.path.startsWith(`${new URL(MIRROR_PAGE_URL).pathname}models/local/SmolLM2-135M-Instruct-GGUF/resolve/main/`)),
      'model fetched from the mirror folder next to the page');
  } finally {
    await ctx.close();
  }
});

/** A devserver of our own (so the offline test can stop it). */
test('offline app shell: a new deploy replaces the cached shell; with the server stopped the page opens and answers', { timeout: 600_000 }, async () => {
  // A deployed copy we can change, on a server of our own that we can stop.
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'three-answers-site-'));
  tmpDirs.push(site);
  fs.cpSync(DIST, site, { recursive: true });
  const { proc, origin } = await startServer(site);
  const ctx = await persistentContext();
  const log = recordContext(ctx);
  // A phase that never comes fails with what the page and its workers said.
  const phase = (p) => modelPhase(p, 'instruct').catch(async (e) => assert.fail(`${e.message}\n${await pageState(p, log)}`));
  try {
    const page = await ctx.newPage();
    const base = `${origin}${new URL(PAGE_URL).pathname}`;
    const url = `${base}?${q({ hub: `${origin}/hub`, instruct: SPEC, foundation: '', ...isolationQuery })}`;
    await page.goto(url);
    assert.match(await phase(page), /^ready/);
    await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });
    const shells = () => page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('three-answers-shell-')));
    const [oldShell] = await shells();
    assert.ok(oldShell, 'the shell is cached');

    // A new deploy: a changed (un-hashed) worker file and so a new build id.
    const sw = path.join(site, 'sw.js');
    fs.writeFileSync(sw, fs.readFileSync(sw, 'utf8').replace(/const BUILD_ID = "[0-9a-f]+"/, 'const BUILD_ID = "feedface00000001"'));
    const loader = path.join(site, 'worker_loader.js');
    fs.writeFileSync(loader, `self.__deploy = 2;\n${fs.readFileSync(loader, 'utf8')}`);
    await page.reload();
    // The new shell replaced the old one, and holds the new deploy's files.
    await page.waitForFunction(async () => {
      const keys = (await caches.keys()).filter((k) => k.startsWith('three-answers-shell-'));
      if (keys.length !== 1 || keys[0] !== 'three-answers-shell-feedface00000001') return false;
      const loader = await (await caches.open(keys[0])).match(new URL('worker_loader.js', location.href).href);
      return Boolean(loader && /__deploy = 2/.test(await loader.text()));
    }, null, { timeout: 30_000, polling: 200 });
    assert.match(await phase(page), /^ready from cache/);
    // A new visit (a new tab: the tab open during the deploy may keep the old
    // version's files a while) gets the new deploy's files. (Which deploy's
    // service worker served a file is in its X-Three-Answers-Shell header: in
    // an isolated page Chromium 156 may still run the old one; the files are new.)
    await page.close();
    const again = await ctx.newPage();
    await again.goto(url);
    const served = () => again.evaluate(() => fetch('./worker_loader.js').then(async (r) => `${r.headers.get('x-three-answers-shell')}: ${await r.text()}`));
    assert.match(await served(), /^three-answers-shell-[0-9a-f]+: self.__deploy = 2/, 'the new deploy\'s worker file');

    // Offline: stop the server, reload, answer.
    proc.kill();
    await new Promise((r) => proc.once('exit', r));
    await assert.rejects(fetch(`${origin}/__requests`), 'the server is stopped');
    await again.reload().catch(async (e) => assert.fail(`${e.message}\n${await pageState(again, log)}`));
    assert.match(await phase(again), /^ready from cache/);
    // Offline the threaded engine, or its helper thread, sometimes does not
    // start in time after a deploy (not understood yet: fetches through the
    // service worker stall): the single-thread engine then takes over, or the
    // threaded one runs on fewer threads, and the page says which. Either way
    // the page answers.
    const engine = await engineStatus(again);
    console.log(`offline engine: ${engine.words}`);
    const late = /the threaded engine did not start|no helper thread started|started within 10 s/.test(engine.words);
    if (late) console.log(`offline engine started late; what the page and its workers said:\n${await pageState(again, log)}`);
    if (ISOLATION_OFF || !late) await assertEngineMode(again);
    else assert.match(engine.words, /^The engine runs on \d+ threads?/, 'the page says what runs');
    await askInstruct(again);
    assert.match(await served(), /^three-answers-shell-[0-9a-f]+: self.__deploy = 2/, 'the new deploy\'s worker, from the shell cache');
    await again.screenshot({ path: path.join(SHOTS, 'offline.png'), fullPage: true });
  } finally {
    await ctx.close();
    proc.kill();
  }
});
