// Every browser (issue 14): the release page in Firefox (firefox-esr, driven
// by puppeteer-core over WebDriver BiDi) and in WebKit (WebKitGTK's
// MiniBrowser, Safari's engine, by WebKitWebDriver under Xvfb), besides the
// Chromium of every other file. In each: the three answers at f32 equal the
// native CLI's ids, the chat follow-up too, Stop stops, a second visit loads
// from the cache with zero model requests, a local GGUF picked through the
// file input answers as the CLI does, a 404 is said in words, and with the
// server stopped the offline shell opens the page and answers. (The fault
// switches, a new deploy and the storage panel run in Chromium only:
// delivery.test.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import puppeteer from 'puppeteer-core';
import { Builder, By } from 'selenium-webdriver';
import { env, modelRequests, requests, startServer } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const MODEL_PATH = env('E2E_MODEL_PATH');
const CLI_F32 = JSON.parse(fs.readFileSync(env('E2E_CLI_JSON'), 'utf8'));
const CLI_AUTO = JSON.parse(fs.readFileSync(env('E2E_CLI_AUTO_JSON'), 'utf8'));
const FIREFOX = env('E2E_FIREFOX', '/usr/bin/firefox-esr');
const MINIBROWSER = env('E2E_MINIBROWSER', '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser');
/** The ids an answer shows: the CLI's, without a final end-of-text. */
const shown = (turn) => (turn.stop_reason === 'end_of_text' ? turn.token_ids.slice(0, -1) : turn.token_ids);
const hub = (instruct, more = '') => `${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(instruct)}${more}`;

/** Firefox through puppeteer-core: `js(fn, ...args)` runs `fn` in the page. */
async function firefox() {
  const browser = await puppeteer.launch({
    browser: 'firefox', executablePath: FIREFOX, headless: true,
    // No connections of its own: this machine's network refuses them.
    extraPrefsFirefox: { 'network.captive-portal-service.enabled': false, 'network.connectivity-service.enabled': false, 'app.update.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false, 'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false },
  });
  const page = await browser.newPage();
  return {
    name: `Firefox ${(await browser.version()).replace(/^firefox\//i, '')}`,
    goto: (url) => page.goto(url),
    js: (fn, ...args) => page.evaluate(fn, ...args),
    upload: async (sel, path) => (await page.$(sel)).uploadFile(path),
    close: () => browser.close(),
  };
}

/** WebKitGTK's MiniBrowser through WebKitWebDriver, in a virtual display. */
async function webkit() {
  const port = 4400 + Math.floor(Math.random() * 500);
  const server = spawn('xvfb-run', ['-a', 'WebKitWebDriver', `--port=${port}`], { stdio: 'ignore', detached: true });
  // Xvfb and the driver take a moment to start (longer on a busy machine): ask until it is ready.
  let exited = null;
  server.on('exit', (code) => { exited = code; });
  for (const end = Date.now() + 30_000; ;) {
    const ready = await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.json()).then((s) => s.value?.ready).catch(() => false);
    if (ready) break;
    if (exited !== null) throw new Error(`WebKitWebDriver ended (exit ${exited}) before it was ready`);
    if (Date.now() > end) throw new Error('WebKitWebDriver was not ready within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const driver = await new Builder().usingServer(`http://127.0.0.1:${port}`)
    .withCapabilities({ browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } })
    .build();
  await driver.manage().setTimeouts({ script: 120_000 });
  const version = (await driver.getCapabilities()).get('browserVersion');
  return {
    name: `WebKitGTK ${version}`,
    goto: (url) => driver.get(url),
    js: (fn, ...args) => driver.executeScript(`return (${fn}).apply(null, arguments)`, ...args),
    upload: async (sel, path) => (await driver.findElement(By.css(sel))).sendKeys(path),
    close: async () => { await driver.quit().catch(() => {}); try { process.kill(-server.pid); } catch {} },
  };
}

async function until(b, fn, arg, what, timeout = 240_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await b.js(fn, arg);
    if (v) return v;
    if (Date.now() > end) throw new Error(`${b.name}: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const modelSettled = (b, slot) => until(b, (slot) => {
  const p = document.querySelector(`[data-testid=model-${slot}] [data-testid=model-phase]`)?.textContent ?? '';
  return /^(ready|failed)/.test(p) && p;
}, slot, `the ${slot} model`);
const click = (b, sel) => b.js((sel) => document.querySelector(sel).click(), sel);
/** The ids of every answer in a panel once the last has ended: [[ids], ...]. */
const answers = (b, panel, n = 1) => until(b, ({ panel, n }) => {
  const all = [...document.querySelectorAll(`#panel-${panel} [data-testid=answer]`)];
  if (all.length < n || !all.every((a) => ['done', 'failed', 'stopped'].includes(a.dataset.phase))) return null;
  return all.map((a) => (a.dataset.phase === 'done' ? (a.dataset.tokenIds || '').split(',').filter(Boolean).map(Number) : `${a.dataset.phase}: ${a.textContent}`));
}, { panel, n }, `${panel} answers`);

for (const open of [firefox, webkit]) {
  test(`${open.name}: three answers and a follow-up equal the CLI's at f32, Stop, the cache, a local file, a 404, offline`, { timeout: 900_000 }, async () => {
    const b = await open();
    try {
      console.log(`engine: ${b.name}`);
      await b.goto(hub(SPEC, `&foundation=${encodeURIComponent(SPEC)}&precision=f32`));
      assert.match(await modelSettled(b, 'instruct'), /^ready/, b.name);
      assert.match(await modelSettled(b, 'foundation'), /^ready/, b.name);
      // The server sends COOP/COEP: where the browser isolates the page, the threaded engine runs.
      const engine = await until(b, () => {
        const e = document.querySelector('[data-testid=engine-threads]');
        return e?.dataset.threads && { isolated: self.crossOriginIsolated, shared: typeof SharedArrayBuffer === 'function', threads: Number(e.dataset.threads), cores: navigator.hardwareConcurrency, words: e.textContent };
      }, null, 'the engine line');
      console.log(`${b.name}: ${engine.words}`);
      if (engine.isolated && engine.shared) assert.equal(engine.threads, Math.min(4, engine.cores), `${b.name}: ${engine.words}`);
      else if (!engine.shared) assert.match(engine.words, /^The engine runs on 1 thread: this browser shares no memory between threads/, b.name);
      else assert.match(engine.words, /^The engine runs on 1 thread: this page is not cross-origin isolated/, b.name);
      await click(b, '[data-testid=ask]');
      assert.deepEqual(await answers(b, 'foundation'), [shown(CLI_F32.foundation)], `${b.name}: foundation`);
      assert.deepEqual(await answers(b, 'instruct'), [shown(CLI_F32.instruct)], `${b.name}: instruct`);
      assert.deepEqual(await answers(b, 'chat'), [shown(CLI_F32.chat[0])], `${b.name}: chat`);
      await click(b, '#tab-chat');
      await click(b, '[data-testid=send-follow-up]');
      assert.deepEqual((await answers(b, 'chat', 2))[1], shown(CLI_F32.chat[1]), `${b.name}: the follow-up`);

      // Stop: every answer ends at once, stopped or done, none left running.
      await click(b, '[data-testid=ask]');
      await click(b, '[data-testid=stop]');
      const ended = await answers(b, 'chat');
      assert.ok(ended.length === 1, `${b.name}: ${JSON.stringify(ended)}`);
      assert.equal(await b.js(() => document.querySelectorAll('[data-phase=waiting],[data-phase=reading],[data-phase=streaming]').length), 0);

      // A second visit: the models come from the browser's cache, with no request.
      await requests(undefined, true);
      await b.goto(hub(SPEC, '&foundation='));
      assert.match(await modelSettled(b, 'instruct'), /^ready from cache/, b.name);
      assert.deepEqual(modelRequests(await requests()), [], `${b.name}: no model requests on the second visit`);

      // A 404, in words.
      await b.goto(hub('test/No-Such-Repo/model.gguf', '&foundation='));
      assert.match(await modelSettled(b, 'instruct'), /^failed: model\.gguf was not found .*HTTP 404/, b.name);

      // A GGUF picked through the file input: read in the page, nothing uploaded; the CLI's answer at auto.
      await requests(undefined, true);
      await b.upload('[data-testid=model-instruct] [data-testid=local-files]', MODEL_PATH);
      // The 404's "failed" is still settled: first the row must name the picked file.
      await until(b, () => /^local: /.test(document.querySelector('[data-testid=model-instruct] .spec')?.textContent ?? ''), null, 'the picked file in the row');
      assert.match(await modelSettled(b, 'instruct'), /^ready from local files/, b.name);
      await click(b, '[data-testid=ask]');
      assert.deepEqual(await answers(b, 'instruct'), [shown(CLI_AUTO.instruct)], `${b.name}: local file`);
      assert.deepEqual(modelRequests(await requests()), [], `${b.name}: the local file was not fetched`);

      // The offline shell: after one visit to a server of our own, stop it; the page opens and answers.
      const { proc, origin } = await startServer();
      const base = `${origin}${new URL(PAGE_URL).pathname}`;
      const offline = `${base}?hub=${encodeURIComponent(`${origin}/hub`)}&instruct=${encodeURIComponent(SPEC)}&foundation=`;
      try {
        await b.goto(offline);
        assert.match(await modelSettled(b, 'instruct'), /^ready/, b.name);
        await until(b, () => Boolean(navigator.serviceWorker?.controller), null, 'the service worker', 60_000);
      } finally {
        proc.kill();
      }
      await new Promise((r) => proc.once('exit', r));
      await b.goto(offline);
      assert.match(await modelSettled(b, 'instruct'), /^ready from cache/, `${b.name}: offline`);
      await click(b, '[data-testid=ask]');
      assert.deepEqual(await answers(b, 'instruct'), [shown(CLI_AUTO.instruct)], `${b.name}: offline answer`);
    } finally {
      await b.close();
    }
  });
}
