// Hostile links (issue 11): a link can name any hub and any repo path. The
// worker fetches only from http(s) hubs, and only inside the named repo: a
// `data:` hub (a model inline in the link) or dot segments in the spec or the
// revision are refused in words, and no request leaves for them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, launchBrowser } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');

let browser, page;
const requests = [];
before(async () => {
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
});
after(async () => { await browser?.close(); });

async function instructPhase(query) {
  await page.goto(`${PAGE_URL}?${query}&foundation=&sw=off&cache=off`);
  await page.waitForFunction(() => /^(ready|failed)/.test(document.querySelector('[data-testid=model-instruct] [data-testid=model-phase]')?.textContent ?? ''),
    null, { timeout: 60_000, polling: 100 });
  return page.locator('[data-testid=model-instruct] [data-testid=model-phase]').textContent();
}

test('a data: hub is refused in words, nothing is fetched from it', { timeout: 120_000 }, async () => {
  const phase = await instructPhase(`hub=${encodeURIComponent('data:application/octet-stream;base64,R0dVRg==')}&instruct=a/b/c.gguf`);
  assert.match(phase, /^failed.*not a web address/);
  assert.ok(!requests.some((u) => u.startsWith('data:application/octet-stream')), 'no request for the data: URL');
});

test('dot segments in the model spec or the revision are refused in words', { timeout: 120_000 }, async () => {
  const [owner, name, file] = SPEC.split('/');
  let phase = await instructPhase(`hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(`x/../${owner}/${name}/${file}`)}`);
  assert.match(phase, /^failed.*not a plain name/);
  phase = await instructPhase(`hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&revision=${encodeURIComponent('../../elsewhere')}`);
  assert.match(phase, /^failed.*not a branch, tag or commit name/);
  // The same link without the hostile parts loads, and the row says where from.
  phase = await instructPhase(`hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}`);
  assert.match(phase, /^ready/);
  assert.equal(await page.locator('[data-testid=model-instruct] [data-testid=model-origin]').textContent(), `from ${HUB.replace(/^https?:\/\//, '')}`);
});

test('a file larger than it can be is refused up front, in words, without downloading it', { timeout: 120_000 }, async () => {
  requests.length = 0;
  // A "config.json" of 100 MB (the cap for a model's small files is 64 MB).
  let phase = await instructPhase(`hub=${encodeURIComponent(HUB)}&instruct=test/Huge-Config`);
  assert.match(phase, /^failed.*config\.json is .*not a model file/);
  // A 3.5 GB GGUF: more than a browser tab can hold.
  phase = await instructPhase(`hub=${encodeURIComponent(HUB)}&instruct=test/Huge-GGUF/huge.gguf`);
  assert.match(phase, /^failed.*huge\.gguf is .*more than .*browser tab can hold/);
});

test('the page runs under its Content-Security-Policy: no inline script but its own, no eval; models still load and answer', { timeout: 180_000 }, async () => {
  const p = await browser.newPage();
  const violations = [];
  p.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await p.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=&csp-probe=1`);
  const policy = await p.locator('meta[http-equiv=Content-Security-Policy]').getAttribute('content');
  for (const part of ["default-src 'none'", "script-src 'self' 'wasm-unsafe-eval' 'sha256-", "worker-src 'self'", "object-src 'none'", "base-uri 'none'"]) {
    assert.ok(policy.includes(part), `${part} in ${policy}`);
  }
  assert.doesNotMatch(policy, /unsafe-inline|'unsafe-eval'/);
  // The page's own code runs (it loads a model in its worker and answers), and nothing it does is refused.
  await p.waitForFunction(() => /^ready/.test(document.querySelector('[data-testid=model-instruct] [data-testid=model-phase]')?.textContent ?? ''), null, { timeout: 120_000 });
  await p.locator('[data-testid=ask]').click();
  await p.waitForFunction(() => document.querySelector('#panel-instruct [data-testid=answer]')?.dataset.phase === 'done', null, { timeout: 120_000 });
  assert.deepEqual(violations, [], 'the page itself violates nothing');
  // Script injected into the page (as model output would be, were it ever rendered as HTML) does not run.
  const ran = await p.evaluate(async () => {
    const blocked = new Promise((resolve) => document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }));
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true;';
    document.head.append(s);
    return { injected: window.__injected === true, directive: await blocked };
  });
  assert.deepEqual(ran, { injected: false, directive: 'script-src-elem' });
  await p.close();
});
