// What every e2e file shares: the environment scripts/test-e2e.sh sets, and
// the system's headless Chromium with the flags this machine needs (no
// background networking: its connections would be refused here).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
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

/** `E2E_ISOLATION=off` (scripts/test-e2e.sh): servers without COOP/COEP and
 * pages that ask the service worker for none, so the single-thread engine runs. */
export const ISOLATION_OFF = process.env.E2E_ISOLATION === 'off';
/** What a page's query adds in that mode. */
export const isolationQuery = ISOLATION_OFF ? { isolation: 'off' } : {};

const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];

// Every page of every test runs under the page's Content-Security-Policy: a
// violation anywhere (the browser reports it on the console) fails the test
// file. Pages whose address carries `csp-probe` violate it on purpose.
const cspViolations = [];
function watchCsp(page) {
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text()) && !page.url().includes('csp-probe')) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
}
process.on('exit', () => {
  if (cspViolations.length) {
    console.error(`Content-Security-Policy violations:\n${cspViolations.join('\n')}`);
    process.exitCode = 1;
  }
});

/** A fresh headless Chromium (its pages watched for CSP violations). */
export async function launchBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (options) => {
    const page = await newPage(options);
    watchCsp(page);
    return page;
  };
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    context.on('page', watchCsp);
    return context;
  };
  return browser;
}

/** A headless Chromium with a profile kept in `dir` (service workers, caches). */
export async function launchPersistent(dir, options = {}) {
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, ...options });
  context.pages().forEach(watchCsp);
  context.on('page', watchCsp);
  return context;
}

/** A fresh browser profile with one page. Persistent: Chromium's
 * incognito-like contexts refuse to cache a 257 MB file ("UnknownError"). */
export async function freshPage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-profile-'));
  const context = await launchPersistent(dir, { viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(60_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const close = context.close.bind(context);
  context.close = async () => { await close(); fs.rmSync(dir, { recursive: true, force: true }); };
  return { context, page };
}

/** A fresh Chromium on the page with the test GGUF in both slots at f32
 * (the native CLI's reference precision), both models ready. */
export async function openTestModelPage() {
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.setDefaultTimeout(60_000);
  const [hub, spec] = [encodeURIComponent(env('E2E_HUB')), encodeURIComponent(env('E2E_MODEL_SPEC'))];
  await page.goto(`${env('E2E_PAGE_URL')}?hub=${hub}&instruct=${spec}&foundation=${spec}&precision=f32`);
  for (const slot of ['instruct', 'foundation']) assert.match(await modelPhase(page, slot), /^ready/);
  return { browser, page };
}

/** What the dev server saw since the last reset (`/__requests`). */
export async function requests(origin = env('E2E_ORIGIN'), reset = false) {
  const r = await (await fetch(`${origin}/__requests${reset ? '?reset=1' : ''}`)).json();
  return r.requests;
}
/** Requests for model files (the hub folder or any `resolve` URL). */
export const modelRequests = (reqs) => reqs.filter((r) => r.path.startsWith('/hub/') || r.path.includes('/resolve/'));

/** Waits until a slot's model is ready or failed; returns the phase words. */
export async function modelPhase(page, slot, timeout = 180_000) {
  const sel = `[data-testid=model-${slot}] [data-testid=model-phase]`;
  await page.waitForFunction((sel) => /^(ready|failed)/.test(document.querySelector(sel)?.textContent ?? ''), sel, { timeout, polling: 200 });
  return page.locator(sel).textContent();
}

/** The engine line once the worker is ready: `{ isolated, threads, words }`. */
export async function engineStatus(page) {
  const sel = '[data-testid=engine-threads]';
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.threads, sel, { timeout: 60_000, polling: 200 });
  return page.evaluate((sel) => {
    const e = document.querySelector(sel);
    return { isolated: self.crossOriginIsolated, threads: Number(e.dataset.threads), words: e.textContent };
  }, sel);
}

/** The page runs the engine the run's mode says: isolated and on one thread
 * per core (at most 4) by default, or unisolated on one thread (`E2E_ISOLATION=off`). */
export async function assertEngineMode(page) {
  const e = await engineStatus(page);
  if (ISOLATION_OFF) {
    assert.deepEqual([e.isolated, e.threads], [false, 1], e.words);
    assert.match(e.words, /^The engine runs on 1 thread: the address turns cross-origin isolation off/);
  } else {
    const cores = Math.min(4, await page.evaluate(() => navigator.hardwareConcurrency));
    assert.deepEqual([e.isolated, e.threads], [true, cores], e.words);
    assert.match(e.words, cores > 1 ? /^The engine runs on \d+ threads \(WebAssembly threads/ : /^The engine runs on 1 thread/);
  }
  return e;
}

/** Ask and wait for the Instruct answer; returns its text. */
export async function askInstruct(page) {
  await page.locator('[data-testid=ask]').click();
  await page.waitForFunction(() => {
    const a = document.querySelector('#panel-instruct [data-testid=answer]');
    return a && ['done', 'failed', 'stopped'].includes(a.dataset.phase);
  }, null, { timeout: 180_000, polling: 100 });
  const a = page.locator('#panel-instruct [data-testid=answer]');
  assert.equal(await a.getAttribute('data-phase'), 'done', await page.locator('#panel-instruct').textContent());
  const text = await a.locator('[data-testid=answer-text]').textContent();
  assert.ok(text.trim().length > 0, 'an answer');
  return text;
}


/** A dev server of the test's own (one it can stop): `dist` under the page's
 * base path, with the test model at its spec; COOP/COEP as the run's mode
 * says (`isolation`: true, false or the mode), `extra` devserver arguments. */
export async function startServer(dist = env('E2E_DIST'), { isolation = !ISOLATION_OFF, extra = [] } = {}) {
  const proc = spawn('python3', [path.join(env('E2E_ROOT'), 'scripts/devserver.py'), '--port', '0', '--dist', dist,
    '--base', new URL(env('E2E_PAGE_URL')).pathname, '--file', `${env('E2E_MODEL_SPEC')}=${env('E2E_MODEL_PATH')}`,
    ...(isolation ? ['--isolation'] : []), ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const origin = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/devserver: (http:\/\/[^ \n]*)\//);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (c) => reject(new Error(`devserver exited ${c}`)));
  });
  return { proc, origin };
}

/** Records what a context's pages, their workers and its service workers
 * say (console, errors, worker starts and ends, failed requests), and the
 * page's last messages from its worker, for `pageState` after a failure. */
export function recordContext(ctx) {
  const log = [];
  const at = () => new Date().toISOString().slice(11, 23);
  const add = (line) => log.push(`${at()} ${line}`.slice(0, 400));
  const watch = (page) => {
    page.on('console', (m) => add(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => add(`[page error] ${e.message}`));
    page.on('worker', (w) => {
      add(`[worker start] ${w.url()}`);
      w.on('console', (m) => add(`[worker ${m.type()}] ${m.text()}`));
      w.on('close', () => add(`[worker end] ${w.url()}`));
    });
    page.on('requestfailed', (r) => add(`[request failed] ${r.url()}: ${r.failure()?.errorText}`));
  };
  ctx.pages().forEach(watch);
  ctx.on('page', watch);
  // Requests (the page's, its workers', the service worker's) not settled yet.
  const pending = new Map();
  log.pending = () => [...pending].map(([r, t]) => `${r.method()} ${r.url()} (${r.serviceWorker() ? 'service worker' : 'page or worker'}, ${((Date.now() - t) / 1000).toFixed(1)} s)`);
  ctx.on('request', (r) => pending.set(r, Date.now()));
  for (const e of ['requestfinished', 'requestfailed']) ctx.on(e, (r) => pending.delete(r));
  const watchSw = (w) => {
    add(`[service worker] ${w.url()}`);
    w.on('console', (m) => add(`[sw ${m.type()}] ${m.text()}`));
  };
  ctx.serviceWorkers().forEach(watchSw);
  ctx.on('serviceworker', watchSw);
  // Each worker's last messages to its page (what it said before going quiet).
  ctx.addInitScript(() => {
    const W = self.Worker;
    if (!W) return;
    self.__workerSaid = [];
    self.Worker = class extends W {
      constructor(url, opts) {
        super(url, opts);
        const said = { url: String(url), started: Date.now(), messages: [] };
        self.__workerSaid.push(said);
        this.addEventListener('message', (e) => {
          said.messages.push(`${new Date().toISOString().slice(11, 23)} ${String(e.data).slice(0, 300)}`);
          if (said.messages.length > 8) said.messages.shift();
        });
        this.addEventListener('error', (e) => said.messages.push(`error: ${e.message}`));
      }
    };
  });
  return log;
}

/** What a page shows and runs, in words (for an assertion's message):
 * the models' and the engine's lines, the notice, which service worker
 * controls it and which served its worker file, the caches, what its
 * workers last said, and `log`'s tail (`recordContext`). */
export async function pageState(page, log = []) {
  const state = await Promise.race([
    page.evaluate(async () => {
      const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.trim().replace(/\s+/g, ' ')).join(' | ');
      const shell = await Promise.race([
        fetch('./worker_loader.js').then((r) => `${r.status} ${r.headers.get('x-three-answers-shell')}`, (e) => `failed: ${e}`),
        new Promise((r) => setTimeout(() => r('no answer in 5 s'), 5000)),
      ]);
      return {
        models: text('[data-testid^=model-]'),
        engine: text('[data-testid=engine-threads]'),
        notice: text('[role=alert], [data-testid=notice]'),
        controller: navigator.serviceWorker.controller?.scriptURL ?? null,
        isolated: self.crossOriginIsolated,
        shell,
        caches: await caches.keys(),
        workers: self.__workerSaid,
      };
    }),
    new Promise((r) => setTimeout(() => r('the page did not answer in 15 s'), 15_000)),
  ]).catch((e) => `page.evaluate failed: ${e.message}`);
  return `page state: ${JSON.stringify(state, null, 1)}\nrequests not settled: ${JSON.stringify(log.pending?.() ?? [], null, 1)}\nlog (last 60):\n${log.slice(-60).join('\n')}`;
}
