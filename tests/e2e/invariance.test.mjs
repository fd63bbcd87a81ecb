// One prompt, one answer (issue 10), in the real worker at the default
// precision (the test GGUF's Q4_1 blocks re-quantized to Q8_0): the Chat tab's
// first answer re-uses the Instruct answer's KV cache and reads only the last
// prompt token, yet gives the same ids as the Instruct tab, which read the
// prompt in one batch; and both equal the native CLI's ids at the same
// precision (the wasm SIMD kernels sum in the portable kernels' order).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { env, launchBrowser } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_HUB');
const SPEC = env('E2E_MODEL_SPEC');
const CLI_AUTO = JSON.parse(fs.readFileSync(env('E2E_CLI_AUTO_JSON'), 'utf8'));
// The page's preset questions and the tutorial's, and one more.
const QUESTIONS = ['What is the capital of France?', 'Write a haiku about the sea.', 'Explain gravity to a child.', 'List three fruits.', 'Who wrote Hamlet?'];

let browser, page;
before(async () => {
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
});
after(async () => { await browser?.close(); });

const ids = async (root) => (await page.locator(`${root} [data-testid=answer]`).last().getAttribute('data-token-ids')).split(',').filter(Boolean).map(Number);
const phase = (root) => page.locator(`${root} [data-testid=answer]`).last().getAttribute('data-phase');
async function waitDone(root) {
  await page.waitForFunction((root) => {
    const all = document.querySelectorAll(`${root} [data-testid=answer]`);
    return all.length && /done|failed|stopped/.test(all[all.length - 1].dataset.phase);
  }, root, { timeout: 240_000, polling: 100 });
  assert.equal(await phase(root), 'done', `${root} did not end cleanly`);
}

test('default precision: the first chat answer equals the instruct answer for every question', { timeout: 900_000 }, async () => {
  await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}&instruct=${encodeURIComponent(SPEC)}&foundation=${encodeURIComponent(SPEC)}`);
  await page.waitForFunction(() => /^ready/.test(document.querySelector('[data-testid=model-instruct] [data-testid=model-phase]')?.textContent ?? ''),
    null, { timeout: 240_000, polling: 100 });
  await page.locator('summary', { hasText: 'Settings' }).click();
  assert.equal(await page.locator('#precision').inputValue(), 'auto', 'the default precision');
  await page.locator('#max-new-tokens').fill('30');
  await page.locator('#max-new-tokens').dispatchEvent('change');
  for (const q of QUESTIONS) {
    await page.locator('[data-testid=question]').fill(q);
    await page.locator('[data-testid=ask]').click();
    for (const root of ['#panel-instruct', '#panel-chat', '#panel-foundation']) await waitDone(root);
    const [instruct, chat] = [await ids('#panel-instruct'), await ids('#panel-chat')];
    console.log(`${q}: instruct ${instruct.length} ids, chat ${chat.length} ids`);
    assert.ok(instruct.length > 0, `${q}: the instruct answer is empty`);
    assert.deepEqual(chat, instruct, `${q}: the chat's first answer must equal the instruct answer`);
    if (q === QUESTIONS[0]) { // the CLI's default question
      const shown = (t) => (t.stop_reason === 'end_of_text' ? t.token_ids.slice(0, -1) : t.token_ids);
      assert.deepEqual(instruct, shown(CLI_AUTO.instruct), 'instruct equals the native CLI at auto');
      assert.deepEqual(chat, shown(CLI_AUTO.chat[0]), 'chat equals the native CLI at auto');
      assert.deepEqual(await ids('#panel-foundation'), shown(CLI_AUTO.foundation), 'foundation equals the native CLI at auto');
    }
  }
});

test('default precision: a chat rebuilt after Reset gives the same follow-up answer as the first time', { timeout: 600_000 }, async () => {
  const chatAnswers = () => page.locator('#panel-chat [data-testid=answer]').count();
  async function chatWithFollowUp() {
    await page.locator('[data-testid=question]').fill(QUESTIONS[0]);
    await page.locator('[data-testid=ask]').click();
    for (const root of ['#panel-instruct', '#panel-chat', '#panel-foundation']) await waitDone(root);
    await page.locator('#tab-chat').click();
    await page.locator('[data-testid=follow-up]').fill('And what is a famous landmark there?');
    await page.locator('[data-testid=send-follow-up]').click();
    await page.waitForFunction(() => document.querySelectorAll('#panel-chat [data-testid=answer]').length === 2, null, { timeout: 60_000 });
    await waitDone('#panel-chat');
    return ids('#panel-chat');
  }
  // Turn by turn: the follow-up re-uses the cache of turn 1's prompt and answer.
  const first = await chatWithFollowUp();
  // After Reset the same conversation is built again; the worker's cache now
  // holds the previous follow-up, so the positions are read in other pieces.
  await page.locator('[data-testid=reset-chat]').click();
  assert.equal(await chatAnswers(), 0, 'Reset empties the chat');
  const again = await chatWithFollowUp();
  console.log(`follow-up: ${first.length} ids, again ${again.length} ids`);
  assert.ok(first.length > 0);
  assert.deepEqual(again, first, 'the same conversation gives the same follow-up answer');
});
