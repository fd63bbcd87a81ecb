// Why the three answers differ (issue 13), on the test GGUF at f32 in the
// release page: the end-of-text meter under every answer, the chat's
// anatomy, the 2×2 template grid, a link that reproduces the page. The tests
// run in order on one page.
//   E2E_CLI_JSON  the native CLI's f32 answers, with `end_probs` per answer
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { env, modelPhase, openTestModelPage } from './browser.mjs';

const SPEC = env('E2E_MODEL_SPEC');
const CLI = JSON.parse(fs.readFileSync(env('E2E_CLI_JSON'), 'utf8'));
// The instruct answer's second token: " capital" of "The capital of France is Paris.".
const CLI_TOKEN_2 = ' capital';
const SHOTS = env('E2E_SCREENSHOTS', path.resolve(import.meta.dirname, '../../target/screenshots'));

let browser, page;
before(async () => { ({ browser, page } = await openTestModelPage()); });
after(async () => { await browser?.close(); });

async function ended(root, n = 1) {
  await page.waitForFunction(([root, n]) => {
    const all = document.querySelectorAll(`${root} [data-testid=answer]`);
    return all.length === n && ['done', 'failed', 'stopped'].includes(all[n - 1].dataset.phase);
  }, [root, n], { timeout: 240_000, polling: 100 });
}

const meterValues = async (meter) => (await meter.getAttribute('data-probs')).split(',').map(Number);

function assertSameValues(name, got, want) {
  assert.equal(got.length, want.length, `${name}: one value per step`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1e-6 + want[i] * 1e-5, `${name} step ${i}: page ${g}, CLI ${want[i]}`));
}

test('end-of-text meter: under every answer, the CLI\'s values; the last is what the candidates show; keyboard-reachable; in words', { timeout: 600_000 }, async () => {
  await page.locator('[data-testid=ask]').click();
  for (const root of ['#panel-instruct', '#panel-chat', '#panel-foundation']) await ended(root);
  for (const [name, root, want] of [['instruct', '#panel-instruct', CLI.instruct], ['chat', '#panel-chat', CLI.chat[0]], ['foundation', '#panel-foundation', CLI.foundation]]) {
    const meter = page.locator(`${root} [data-testid=end-meter]`).last();
    assertSameValues(name, await meterValues(meter), want.end_probs);
    assert.equal(await meter.locator('.meter-point').count(), want.end_probs.length, `${name}: a point per step`);
  }
  // The instruct answer: unsure it is over while it writes, sure at the end.
  const instruct = await meterValues(page.locator('#panel-instruct [data-testid=end-meter]'));
  const last = instruct.at(-1);
  assert.ok(last > 0.5 && instruct.slice(0, -1).every((p) => p < 0.1), JSON.stringify(instruct));
  assert.match(CLI.instruct.text, /^The capital/);
  assert.match(await page.locator('#panel-instruct [data-testid=end-meter-words]').textContent(),
    new RegExp(`^End-of-text probability .* tokens, then ${(last * 100).toFixed(1)} % at the step where it stopped\\.`));

  // The foundation tab (instruct weights on the raw string) ended at once:
  // the meter's one value is the stop token's probability the candidates show.
  assert.equal(CLI.foundation.token_ids.length, 1, 'the test file ends the raw question at once');
  const chip = page.locator('#panel-foundation [data-testid=end-candidates] .cand.chosen');
  const shown = Number((await chip.textContent()).match(/([\d.]+)%$/)[1]);
  const [only] = await meterValues(page.locator('#panel-foundation [data-testid=end-meter]'));
  assert.equal((only * 100).toFixed(1), shown.toFixed(1), `meter ${only} vs candidates ${shown} %`);
  assert.match(await page.locator('#panel-foundation [data-testid=end-meter-words]').textContent(), /at the first step, so it stopped at once/);

  // Keyboard: Tab reaches the points; focus names the token and the value.
  await page.locator('#tab-instruct').click();
  const first = page.locator('#panel-instruct .meter-point').first();
  await first.focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('class')), 'meter-point', 'Tab moves to the next point');
  const label = await page.locator('#panel-instruct .meter-point').nth(1).getAttribute('aria-label');
  assert.equal(label, `Token 2 "${CLI_TOKEN_2}": end of text ${pct(instruct[1])}`);
  assert.equal(await page.locator('#panel-instruct [data-testid=end-meter-readout]').textContent(), label, 'focus shows the same words');
  await page.locator('#panel-instruct [data-testid=end-meter]').screenshot({ path: path.join(SHOTS, 'end-meter.png') });

  // Each chat turn gets its own meter.
  await page.locator('#tab-chat').click();
  await page.locator('[data-testid=send-follow-up]').click();
  await ended('#panel-chat', 2);
  assertSameValues('chat turn 2', await meterValues(page.locator('#panel-chat [data-testid=end-meter]').nth(1)), CLI.chat[1].end_probs);
});

test('what fine-tuning changed: the instruct answer rated by the foundation model in one pass, coloured by rank, with the shares and each token\'s rank and probability', { timeout: 300_000 }, async () => {
  await page.locator('#tab-instruct').click();
  const shift = page.locator('#panel-instruct [data-testid=shift-tokens]');
  await shift.waitFor({ timeout: 120_000 });
  const spans = shift.locator('.tok');
  assert.equal(await spans.count(), CLI.instruct.token_ids.length, 'one per id the instruct model picked, its end-of-text included');
  // The test file is in both slots: the "base" model would have written every token itself.
  assert.deepEqual(new Set(await spans.evaluateAll((els) => els.map((e) => `${e.className} ${e.dataset.rank}`))), new Set(['tok same 1']));
  assert.equal(await page.locator('#panel-instruct [data-testid=shift-shares]').textContent(),
    '100 % of this answer is what the base model would have written anyway; 0 % is in its top 3; 0 % was shifted by fine-tuning.');
  const texts = await spans.allTextContents();
  assert.equal(texts.slice(0, -1).join(''), CLI.instruct.text);
  assert.equal(texts.at(-1), '⟨end⟩');
  // The stop token's probability, read in one batch by the other slot, is the
  // instruct meter's last value, read token by token: the same bits.
  const meter = await meterValues(page.locator('#panel-instruct [data-testid=end-meter]'));
  assert.equal(await spans.last().getAttribute('title'), `base model: rank 1, ${pct(meter.at(-1))}`);
  assert.match(await spans.first().getAttribute('title'), /^base model: rank 1, \d+\.\d+ %$/);
});

test('chat anatomy: a context meter under the chat, and the whole conversation the model read for any turn in the Prompt tab', { timeout: 300_000 }, async () => {
  // After the previous test: two chat turns.
  await page.locator('#tab-chat').click();
  assert.equal(await page.locator('#panel-chat [data-testid=answer]').count(), 2);
  const meter = page.locator('#panel-chat [data-testid=context-meter] meter');
  const [reused, fresh, wrote, value, max] = await Promise.all(['data-reused', 'data-new', 'data-generated', 'value', 'max'].map((a) => meter.getAttribute(a).then(Number)));
  const t = CLI.chat[1].timings;
  assert.equal(reused + fresh, t.prompt_tokens, 'the whole conversation was read: re-used + new');
  assert.equal(wrote, t.generated_tokens);
  assert.equal(value, t.prompt_tokens + t.generated_tokens);
  assert.ok(reused > CLI.chat[0].timings.prompt_tokens, `turn 2 re-used turn 1 from the cache (${reused})`);
  assert.ok(max >= 2048 && max >= value, `the model's context window: ${max}`);
  assert.equal(await page.locator('#panel-chat [data-testid=context-words]').textContent(),
    `The conversation is now ${value} tokens of the model's ${max} (${(value * 100 / max).toFixed(1)} %). This turn re-used ${reused} from the cache, read ${fresh} new ones and wrote ${wrote}.`);

  await page.locator('#tab-prompt').click();
  const shown = () => page.locator('[data-testid=prompt-chat] pre.prompt').textContent();
  const select = page.locator('[data-testid=prompt-turn]');
  assert.equal(await shown(), CLI.chat[1].prompt, 'the latest turn by default');
  await select.selectOption({ value: '0' });
  assert.equal(await shown(), CLI.chat[0].prompt);
  await select.selectOption({ value: '1' });
  assert.equal(await shown(), CLI.chat[1].prompt);
  assert.ok(CLI.chat[1].prompt.startsWith(CLI.chat[0].prompt), 'turn 2 reads the whole conversation, turn 1 included');
});

/** The page's percentage words (text.rs `percent`). */
function pct(p) {
  const x = p * 100;
  return x >= 10 ? `${x.toFixed(1)} %` : x >= 0.01 ? `${x.toFixed(2)} %` : '<0.01 %';
}

const shownIds = (turn) => (turn.stop_reason === 'end_of_text' ? turn.token_ids.slice(0, -1) : turn.token_ids).join(',');

test('the 2×2 grid: both weights on both prompts; two cells are the Foundation and Instruct answers (not recomputed), two run when the tab opens', { timeout: 300_000 }, async () => {
  const job = (sel) => page.locator(`${sel} [data-testid=answer]`).first().getAttribute('data-job');
  const [foundationJob, instructJob] = [await job('#panel-foundation'), await job('#panel-instruct')];
  await page.locator('#tab-compare').click();
  await page.waitForFunction(() => ['cell-instruct-raw', 'cell-foundation-templated'].every((c) => document.querySelector(`[data-testid=${c}] [data-testid=answer]`)?.dataset.phase === 'done'),
    null, { timeout: 240_000, polling: 100 });
  assert.equal(await job('[data-testid=cell-foundation-raw]'), foundationJob, 'the Foundation answer, not asked again');
  assert.equal(await job('[data-testid=cell-instruct-templated]'), instructJob, 'the Instruct answer, not asked again');
  const ids = (cell) => page.locator(`[data-testid=${cell}] [data-testid=answer]`).getAttribute('data-token-ids');
  // The test file is in both slots, so the two new cells are the other two
  // answers of the same weights: on the raw question the instruct weights end at once.
  assert.equal(await ids('cell-instruct-raw'), shownIds(CLI.foundation));
  assert.match(await page.locator('[data-testid=cell-instruct-raw] [data-testid=ending]').textContent(), /ended its answer at once/);
  assert.equal(await ids('cell-foundation-templated'), shownIds(CLI.instruct));
  assert.equal(await page.locator('[data-testid=cell-foundation-templated] [data-testid=answer-text]').textContent(), CLI.instruct.text);
  assert.equal(await page.locator('#panel-compare [data-testid=end-meter]').count(), 4, 'each cell has its end-of-text meter');
  const newJobs = [await job('[data-testid=cell-instruct-raw]'), await job('[data-testid=cell-foundation-templated]')];
  await page.locator('#tab-instruct').click();
  await page.locator('#tab-compare').click();
  assert.deepEqual([await job('[data-testid=cell-instruct-raw]'), await job('[data-testid=cell-foundation-templated]')], newJobs, 'opening the tab again asks nothing');
  await page.locator('#panel-compare').screenshot({ path: path.join(SHOTS, 'compare-grid.png') });
});

const idsOf = async (p, root, n = 0) => (await p.locator(`${root} [data-testid=answer]`).nth(n).getAttribute('data-token-ids'));

async function setNumber(p, id, value) {
  if (!(await p.locator(`#${id}`).isVisible())) await p.locator('details.settings > summary').click();
  await p.locator(`#${id}`).fill(String(value));
  await p.locator(`#${id}`).dispatchEvent('change');
}

test('a link that reproduces the page: the question, settings, system prompt and follow-ups travel in it; a fresh browser gives the same ids; bad values are named', { timeout: 600_000 }, async () => {
  await page.locator('#tab-instruct').click();
  await page.locator('[data-testid=question]').fill('Name three primary colors.');
  for (const [id, v] of [['max-new-tokens', 12], ['follow-up-max', 9], ['repetition-penalty', 1.3], ['top-k', 5], ['seed', 7]]) await setNumber(page, id, v);
  await page.locator('#tab-chat').click();
  await page.locator('details.system summary').click();
  await page.locator('[data-testid=system-prompt]').fill('Answer in as few words as you can.');
  await page.locator('[data-testid=ask]').click();
  for (const root of ['#panel-instruct', '#panel-chat', '#panel-foundation']) await ended(root);
  await page.locator('[data-testid=follow-up]').fill('And which of them is warm?');
  await page.locator('[data-testid=send-follow-up]').click();
  await ended('#panel-chat', 2);
  const want = [await idsOf(page, '#panel-foundation'), await idsOf(page, '#panel-instruct'), await idsOf(page, '#panel-chat', 0), await idsOf(page, '#panel-chat', 1)];
  assert.ok(want.every((ids) => ids.length > 0), JSON.stringify(want));

  await page.locator('[data-testid=copy-link]').click();
  const link = await page.locator('[data-testid=share-link]').inputValue();
  for (const part of ['q=Name%20three%20primary%20colors.', 'precision=f32', 'max_new_tokens=12', 'follow_up_max_new_tokens=9', 'repetition_penalty=1.3',
    'top_k=5', 'seed=7', 'system=Answer%20in%20as%20few%20words%20as%20you%20can.', 'follow=And%20which%20of%20them%20is%20warm%3F', `instruct=${SPEC}`]) {
    assert.ok(link.includes(part), `${part} in ${link}`);
  }

  const other = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  try {
    const p = await other.newPage();
    p.setDefaultTimeout(60_000);
    await p.goto(link);
    for (const slot of ['instruct', 'foundation']) assert.match(await modelPhase(p, slot), /^ready/);
    assert.equal(await p.locator('[data-testid=notice]').count(), 0, 'nothing in the link was refused');
    assert.equal(await p.locator('[data-testid=question]').inputValue(), 'Name three primary colors.');
    assert.equal(await p.locator('[data-testid=system-prompt]').inputValue(), 'Answer in as few words as you can.');
    await p.locator('details.settings > summary').click();
    assert.equal(await p.locator('#max-new-tokens').inputValue(), '12');
    await p.locator('[data-testid=ask]').click();
    await p.waitForFunction(() => {
      const all = document.querySelectorAll('#panel-chat [data-testid=answer]');
      return all.length === 2 && all[1].dataset.phase === 'done';
    }, null, { timeout: 240_000, polling: 100 });
    await p.waitForFunction(() => ['#panel-instruct', '#panel-foundation'].every((r) => document.querySelector(`${r} [data-testid=answer]`)?.dataset.phase === 'done'));
    const got = [await idsOf(p, '#panel-foundation'), await idsOf(p, '#panel-instruct'), await idsOf(p, '#panel-chat', 0), await idsOf(p, '#panel-chat', 1)];
    assert.deepEqual(got, want, 'the same greedy ids from the link, the follow-up asked by itself');
    assert.equal(await p.locator('[data-testid=chat-user]').nth(1).textContent(), 'And which of them is warm?');

    await p.goto(`${link}&bogus=1&temperature=hot`);
    const notice = await p.locator('[data-testid=notice]').textContent();
    assert.match(notice, /does not know: bogus \(ignored\)/);
    assert.match(notice, /temperature="hot" in the address is not a number/);
  } finally {
    await other.close();
  }
});
