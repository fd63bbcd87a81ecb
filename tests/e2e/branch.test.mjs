// Branch from any token (issue 13, item 4), on the test GGUF at f32 in the
// release page: in the candidates view, another candidate at step k
// continues the answer from there; its ids equal the native CLI given that
// prefix (`--force-ids`); "Back to the original answer" restores it. The
// candidates of the step that ended an answer branch too (it goes on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { env, openTestModelPage } from './browser.mjs';

const MODEL = env('E2E_MODEL_PATH');
const CLI_BIN = path.join(env('E2E_ROOT'), 'target/release/three-answers');
const CLI = JSON.parse(fs.readFileSync(env('E2E_CLI_JSON'), 'utf8'));
const SHOTS = env('E2E_SCREENSHOTS', path.resolve(import.meta.dirname, '../../target/screenshots'));

/** The CLI's f32 answers when the foundation and instruct answers start with `ids`. */
function cliBranch(ids) {
  const out = execFileSync(CLI_BIN, ['--instruct', MODEL, '--base', MODEL, '--precision', 'f32', '--json', '--force-ids', ids.join(',')]);
  return JSON.parse(out.toString());
}

/** The ids a page answer shows as tokens (its end-of-text id is not a token). */
const withoutEnd = (turn) => (turn.stop_reason === 'end_of_text' ? turn.token_ids.slice(0, -1) : turn.token_ids);

let browser, page;
before(async () => { ({ browser, page } = await openTestModelPage()); });
after(async () => { await browser?.close(); });

const answerIn = (panel) => page.locator(`${panel} [data-testid=answer]`).first();

async function settled(panel, job) {
  await page.waitForFunction(([panel, job]) => {
    const a = document.querySelector(`${panel} [data-testid=answer]`);
    return a && a.dataset.job !== job && ['done', 'failed', 'stopped'].includes(a.dataset.phase);
  }, [panel, job], { timeout: 240_000, polling: 100 });
  const a = answerIn(panel);
  assert.equal(await a.getAttribute('data-phase'), 'done', await page.locator(`${panel} .error`).allTextContents().then(String));
  return a;
}

const pageIds = async (answer) => ((await answer.getAttribute('data-token-ids')) || '').split(',').filter(Boolean).map(Number);

/** Clicks another candidate at `step` of `panel`'s answer; returns the forced ids and the branch's answer. */
async function branchAt(panel, step) {
  const before = answerIn(panel);
  const [job, ids] = [await before.getAttribute('data-job'), await pageIds(before)];
  const row = page.locator(`${panel} [data-testid=candidate-step][data-step="${step}"]`);
  const choice = row.locator('[data-testid=branch-choice]').first();
  const chosen = Number(await choice.getAttribute('data-token-id'));
  assert.match(await choice.getAttribute('aria-label'), new RegExp(`^".*" [\\d.]+%: continue the answer from token ${step + 1} with this token$`));
  await choice.click();
  const after = await settled(panel, job);
  return { forced: [...ids.slice(0, step), chosen], answer: after };
}

test('a branch at step k with another candidate equals the CLI given that prefix; a branch goes on past the stop; the way back restores the answer', { timeout: 900_000 }, async () => {
  await page.locator('[data-testid=ask]').click();
  await page.locator('#tab-instruct').click();
  const original = await settled('#panel-instruct', '');
  assert.deepEqual(await pageIds(original), withoutEnd(CLI.instruct), 'the instruct answer is the CLI\'s');
  const originalText = await original.locator('[data-testid=answer-text]').textContent();
  await page.locator('#panel-instruct [data-testid=toggle-candidates]').check();
  // A row a token, then the step that picked end-of-text.
  assert.equal(await page.locator('#panel-instruct [data-testid=candidate-step]').count(), CLI.instruct.token_ids.length);

  // Step 2: another candidate; the rest is the model's, as the CLI says.
  const k = 2;
  const { forced, answer } = await branchAt('#panel-instruct', k);
  const want = cliBranch(forced).instruct;
  assert.deepEqual(await pageIds(answer), withoutEnd(want), `branch ${forced}`);
  assert.equal(await answer.locator('[data-testid=answer-text]').textContent(), want.text);
  assert.notDeepEqual(want.token_ids, CLI.instruct.token_ids);
  const banner = page.locator('#panel-instruct [data-testid=branch-banner]');
  assert.equal(await banner.getAttribute('data-step'), String(k));
  assert.match(await banner.textContent(), /^A branch: at token 3 this answer takes ".*" instead of ".*", and the model goes on from there\./);
  // The steps before the branch keep what the model weighed there.
  const rows = page.locator('#panel-instruct [data-testid=candidate-step]');
  assert.equal(await rows.nth(0).locator('.cand').count(), 5);
  // Its end-of-text meter covers every step, the forced ones included.
  const probs = (await page.locator('#panel-instruct [data-testid=end-meter]').getAttribute('data-probs')).split(',');
  assert.equal(probs.length, want.token_ids.length);
  await page.locator('#panel-instruct').screenshot({ path: path.join(SHOTS, 'branch.png') });

  // The step that ended the branch: another candidate there goes on instead of stopping.
  const last = (await pageIds(answer)).length;
  const { forced: longer, answer: goesOn } = await branchAt('#panel-instruct', last);
  const wantLonger = cliBranch(longer).instruct;
  assert.deepEqual(await pageIds(goesOn), withoutEnd(wantLonger), `branch ${longer}`);
  assert.ok(wantLonger.token_ids.length > last + 1, 'it went on past the stop');

  // Back to the original answer (not to the first branch).
  await page.locator('#panel-instruct [data-testid=branch-back]').click();
  assert.deepEqual(await pageIds(answerIn('#panel-instruct')), withoutEnd(CLI.instruct));
  assert.equal(await answerIn('#panel-instruct').locator('[data-testid=answer-text]').textContent(), originalText);
  assert.equal(await banner.count(), 0);

  // The CLI with the answer's own first tokens forced gives that answer back.
  assert.deepEqual(cliBranch(CLI.instruct.token_ids.slice(0, 3)).instruct.token_ids, CLI.instruct.token_ids);
});

test('the foundation answer that ended at once branches at its only step and the model goes on, as the CLI does', { timeout: 600_000 }, async () => {
  await page.locator('#tab-foundation').click();
  const foundation = answerIn('#panel-foundation');
  assert.equal(await foundation.getAttribute('data-phase'), 'done');
  assert.deepEqual(await pageIds(foundation), withoutEnd(CLI.foundation));
  await page.locator('#panel-foundation [data-testid=toggle-candidates]').check();
  const { forced, answer } = await branchAt('#panel-foundation', 0);
  const want = cliBranch(forced).foundation;
  assert.deepEqual(await pageIds(answer), withoutEnd(want), `branch ${forced}`);
  assert.ok(want.token_ids.length > 1, 'the branch writes on');
  // The raw prompt stays shown before it, as for any foundation answer.
  assert.equal(await answer.locator('.prompt-echo').textContent(), CLI.foundation.prompt);
});
