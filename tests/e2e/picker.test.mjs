// The model picker (issue 13, item 6), against scripts/hub-emulator.py: the
// SmolLM2 family's sizes with what each would download (from the Hub's tree
// listing) and whether it fits a tab at the chosen precision (from its
// config.json); a 1.7B model at bf16 is refused in words until q8_0 is
// chosen; a repo that does not exist is named; choosing the 360M siblings
// loads them, answers as the CLI does, and puts them in the address bar.
// The emulator's 360M repos hold the test weights; its 1.7B repo has
// SmolLM2-1.7B's config.json and a sparse 3.4 GB model.safetensors.
//   E2E_REAL_HUB        the emulator's Hub origin
//   E2E_CLI_BF16_JSON   the CLI's answers on the bf16 checkpoint the repos hold
//   E2E_GGUF_NAME, E2E_MODEL_PATH  the test GGUF's name in the emulator's test repo, and its path
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { env, freshPage, modelPhase } from './browser.mjs';

const PAGE_URL = env('E2E_PAGE_URL');
const HUB = env('E2E_REAL_HUB');
const CLI_BF16 = JSON.parse(fs.readFileSync(env('E2E_CLI_BF16_JSON'), 'utf8'));
const SHOTS = env('E2E_SCREENSHOTS', path.resolve(import.meta.dirname, '../../target/screenshots'));

/** words::bytes: MiB with one decimal, GiB with two. */
const size = (n) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GB` : `${(n / 2 ** 20).toFixed(1)} MB`);

/** What the page would download of a checkpoint repo, from the tree API. */
async function checkpointSize(repo) {
  const files = await (await fetch(`${HUB}/api/models/${repo}/tree/main`)).json();
  const wanted = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
  return files.filter((f) => wanted.includes(f.path) || f.path.endsWith('.safetensors')).reduce((a, f) => a + f.size, 0);
}

let context, page;
before(async () => {
  ({ context, page } = await freshPage());
  await page.goto(`${PAGE_URL}?hub=${encodeURIComponent(HUB)}`);
});
after(async () => { await context?.close(); });

const report = (slot) => page.locator(`[data-testid=picker-report-${slot}]`);
async function reportSays(slot, re) {
  await page.waitForFunction(([slot, re]) => new RegExp(re).test(document.querySelector(`[data-testid=picker-report-${slot}]`)?.textContent ?? ''),
    [slot, re.source], { timeout: 60_000, polling: 100 });
  return report(slot).textContent();
}

test('each sibling\'s download size and memory at the chosen precision; 1.7B at bf16 needs q8_0, in words; a missing repo is named', { timeout: 300_000 }, async () => {
  await page.locator('details.settings > summary').click();
  await page.locator('[data-testid=model-picker] summary').click();
  assert.ok(await page.locator('[data-testid="sibling-SmolLM2-135M"]').isChecked(), 'the page\'s models are the 135M pair');
  const small = await reportSays('instruct', /MB to download/);
  assert.match(small, new RegExp(`^${size(await checkpointSize('HuggingFaceTB/SmolLM2-135M-Instruct')).replace('.', '\\.')} to download; its \\d+ million weights take [\\d.]+ MB at precision auto: fits in this tab\\.$`));

  await page.locator('[data-testid="sibling-SmolLM2-1.7B"]').check();
  assert.equal(await page.locator('[data-testid=picker-instruct]').inputValue(), 'HuggingFaceTB/SmolLM2-1.7B-Instruct');
  const big = await reportSays('instruct', /GB to download/);
  const bigSize = await checkpointSize('HuggingFaceTB/SmolLM2-1.7B-Instruct');
  assert.ok(bigSize > 3.4e9, `the emulator lists a 3.4 GB repo (${bigSize})`);
  assert.match(big, new RegExp(`^${size(bigSize).replace('.', '\\.')} to download; .* take 3\\.\\d\\d GB at precision auto: more than the 3\\.00 GB a tab can hold: it needs precision q8_0 \\(1\\.\\d\\d GB at precision q8_0\\)\\.$`));
  // Its base repo is not on this hub: the hub's words, and no way to use it.
  assert.match(await reportSays('foundation', /SmolLM2-1\.7B/), /no model repo HuggingFaceTB\/SmolLM2-1\.7B on this hub/);
  assert.ok(await page.locator('[data-testid=picker-use]').isDisabled(), 'a model that does not fit is not loaded');
  await page.locator('[data-testid=model-picker]').screenshot({ path: path.join(SHOTS, 'picker.png') });

  await page.locator('[data-testid=picker-foundation]').fill('');
  await page.locator('[data-testid=picker-foundation]').press('Enter');
  await page.locator('[data-testid=picker-foundation]').blur();
  assert.match(await reportSays('foundation', /No model/), /^No model/);
  await page.locator('[data-testid=picker-precision]').click();
  assert.equal(await page.locator('#precision').inputValue(), 'q8_0');
  assert.match(await reportSays('instruct', /fits in this tab/), /take 1\.\d\d GB at precision q8_0: fits in this tab\.$/);
  assert.ok(await page.locator('[data-testid=picker-use]').isEnabled());
  assert.match(page.url(), /[?&]precision=q8_0(&|$)/, 'the precision is in the address bar');

  // One GGUF file: its size from the listing, its shape from its header
  // (the first 8 MB, one Range request through the CDN redirect).
  const gguf = `test/SmolLM2-135M-Instruct-GGUF/${env('E2E_GGUF_NAME')}`;
  await page.locator('[data-testid=picker-instruct]').fill(gguf);
  await page.locator('[data-testid=picker-instruct]').blur();
  const ggufSize = fs.statSync(env('E2E_MODEL_PATH')).size;
  assert.match(await reportSays('instruct', /MB to download/),
    new RegExp(`^${size(ggufSize).replace('.', '\\.')} to download; its \\d+ million weights take [\\d.]+ MB at precision q8_0: fits in this tab\\.$`));

  // A repo that does not exist: the hub's refusal, named.
  await page.locator('[data-testid=picker-instruct]').fill('nobody/no-such-model');
  await page.locator('[data-testid=picker-instruct]').blur();
  assert.match(await reportSays('instruct', /nobody/), /nobody\/no-such-model/);
  assert.ok(await page.locator('[data-testid=picker-use]').isDisabled());
});

test('the 360M siblings: chosen, loaded, in the address bar, answering as the CLI does; a reload keeps them', { timeout: 600_000 }, async () => {
  await page.selectOption('#precision', { value: 'auto' });
  await page.locator('[data-testid="sibling-SmolLM2-360M"]').check();
  for (const slot of ['instruct', 'foundation']) await reportSays(slot, /fits in this tab/);
  await page.locator('[data-testid=picker-use]').click();
  for (const slot of ['instruct', 'foundation']) {
    assert.match(await modelPhase(page, slot), /^ready/);
    assert.match(await page.locator(`[data-testid=model-${slot}] .spec`).textContent(), /^HuggingFaceTB\/SmolLM2-360M/);
  }
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('instruct'), 'HuggingFaceTB/SmolLM2-360M-Instruct');
  assert.equal(url.searchParams.get('foundation'), 'HuggingFaceTB/SmolLM2-360M');
  assert.equal(url.searchParams.get('precision'), 'auto');
  await page.locator('[data-testid=ask]').click();
  await page.waitForFunction(() => document.querySelector('#panel-instruct [data-testid=answer]')?.dataset.phase === 'done', null, { timeout: 240_000, polling: 100 });
  const ids = (await page.locator('#panel-instruct [data-testid=answer]').getAttribute('data-token-ids')).split(',').map(Number);
  const want = CLI_BF16.instruct.stop_reason === 'end_of_text' ? CLI_BF16.instruct.token_ids.slice(0, -1) : CLI_BF16.instruct.token_ids;
  assert.deepEqual(ids, want, 'the emulator\'s 360M repo holds the test weights: the CLI\'s answer');

  // The address reproduces the choice: cached now, it loads at once.
  await page.reload();
  await page.locator('details.settings > summary').click();
  for (const slot of ['instruct', 'foundation']) assert.match(await modelPhase(page, slot), /^ready/);
  assert.match(await page.locator('[data-testid=model-instruct] .spec').textContent(), /^HuggingFaceTB\/SmolLM2-360M-Instruct/);
  await page.locator('[data-testid=model-picker] summary').click();
  assert.ok(await page.locator('[data-testid="sibling-SmolLM2-360M"]').isChecked());
  assert.match(await reportSays('instruct', /already in this browser/), /^already in this browser \(no download\); .* fits in this tab\.$/);
});
