// End-to-end: the threaded engine and its single-thread fallback (issue 16).
// Each test runs a server of its own: a static host without COOP/COEP (as
// GitHub Pages), where the page's service worker must isolate the page with
// one reload; the same host with `?isolation=off`; and a host whose threaded
// build is missing. Every engine must answer with the native CLI's ids at f32.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { engineStatus, env, freshPage, modelPhase, startServer } from './browser.mjs';

const SPEC = env('E2E_MODEL_SPEC');
const CLI = JSON.parse(fs.readFileSync(env('E2E_CLI_JSON'), 'utf8'));
const BASE = new URL(env('E2E_PAGE_URL')).pathname;
const shownIds = (turn) => (turn.stop_reason === 'end_of_text' ? turn.token_ids.slice(0, -1) : turn.token_ids);

const servers = [];
after(() => servers.forEach((s) => s.proc.kill()));
async function server(options) {
  const s = await startServer(env('E2E_DIST'), options);
  servers.push(s);
  return s;
}
const pageUrl = (origin, extra = '') =>
  `${origin}${BASE}?hub=${encodeURIComponent(`${origin}/hub`)}&instruct=${encodeURIComponent(SPEC)}&foundation=&precision=f32${extra}`;

/** Ask; the instruct answer's ids once done. */
async function instructIds(page) {
  await page.locator('[data-testid=ask]').click();
  await page.waitForFunction(() => ['done', 'failed', 'stopped'].includes(document.querySelector('#panel-instruct [data-testid=answer]')?.dataset.phase),
    null, { timeout: 300_000, polling: 100 });
  const a = page.locator('#panel-instruct [data-testid=answer]');
  assert.equal(await a.getAttribute('data-phase'), 'done', await page.locator('#panel-instruct').textContent());
  return (await a.getAttribute('data-token-ids')).split(',').filter(Boolean).map(Number);
}

/** Polls `fn` in the page until truthy, across the page's own reloads. */
async function until(page, fn, what, timeout = 60_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn).catch(() => undefined); // a reload in between: try again
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a host without headers (GitHub Pages): one reload isolates the page, the threaded engine answers as the CLI; one thread in Settings gives the same ids', { timeout: 900_000 }, async () => {
  const { origin } = await server({ isolation: false });
  const { context, page } = await freshPage();
  try {
    const navigations = [];
    page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
    // Each document notes whether it is isolated as it starts (the reload may
    // come before the test could ask the first one).
    await page.addInitScript(() => {
      try { sessionStorage.setItem('e2e-isolated', (sessionStorage.getItem('e2e-isolated') ?? '') + (self.crossOriginIsolated ? '1' : '0')); } catch {}
    });
    await page.goto(pageUrl(origin));
    await until(page, () => self.crossOriginIsolated && sessionStorage.getItem('three-answers-isolating') === '1', 'the reload into isolation');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('e2e-isolated')), '01', 'the first load is not isolated (no headers, no service worker yet), the reload is');
    assert.equal(navigations.length, 2, `one reload: ${navigations.join(' , ')}`);
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    const cores = Math.min(4, await page.evaluate(() => navigator.hardwareConcurrency));
    const threaded = await engineStatus(page);
    assert.deepEqual([threaded.isolated, threaded.threads], [true, cores], threaded.words);
    assert.match(threaded.words, cores > 1 ? /on \d+ threads \(WebAssembly threads/ : /on 1 thread/);
    const want = shownIds(CLI.instruct);
    assert.deepEqual(await instructIds(page), want, 'the threaded engine gives the CLI\'s ids');

    // Settings: one thread restarts the engine as the single-thread build.
    await page.locator('details.settings > summary').click();
    await page.locator('#threads').selectOption('1');
    await page.waitForFunction(() => /Settings ask for one thread/.test(document.querySelector('[data-testid=engine-threads]')?.textContent), null, { timeout: 60_000 });
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    assert.equal((await engineStatus(page)).threads, 1);
    assert.deepEqual(await instructIds(page), want, 'one thread gives the same ids');
    assert.equal(navigations.length, 2, 'no reload after the first');
  } finally {
    await context.close();
  }
});

test('isolation=off on the same host: no reload, not isolated, the single-thread engine says why and gives the same ids', { timeout: 600_000 }, async () => {
  const { origin } = await server({ isolation: false });
  const { context, page } = await freshPage();
  try {
    await page.goto(pageUrl(origin, '&isolation=off'));
    await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    const single = await engineStatus(page);
    assert.deepEqual([single.isolated, single.threads], [false, 1], single.words);
    assert.match(single.words, /^The engine runs on 1 thread: the address turns cross-origin isolation off/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('three-answers-isolating')), null, 'no reload');
    assert.deepEqual(await instructIds(page), shownIds(CLI.instruct));
    // The same page in a tab the service worker now serves: still not isolated.
    await page.reload();
    assert.equal((await engineStatus(page)).isolated, false);
  } finally {
    await context.close();
  }
});

test('the threaded build fails to load: the single-thread engine takes over, says why, and gives the same ids', { timeout: 600_000 }, async () => {
  const { origin } = await server({ isolation: true, extra: ['--missing', 'worker_mt_bg.wasm'] });
  const { context, page } = await freshPage();
  try {
    await page.goto(pageUrl(origin, '&sw=off'));
    assert.match(await modelPhase(page, 'instruct'), /^ready/);
    const e = await engineStatus(page);
    assert.deepEqual([e.isolated, e.threads], [true, 1], e.words);
    assert.match(e.words, /^The engine runs on 1 thread: the threaded engine did not start \(.+\), so the single-thread one took over\./);
    assert.deepEqual(await instructIds(page), shownIds(CLI.instruct));
  } finally {
    await context.close();
  }
});
