// transformers.js (onnxruntime-web, wasm backend) in the browser benchmark:
// what bench/run.mjs serves for it and how one fresh load is measured.
//
// The model is the test GGUF's weights exported as transformers.js's own
// conversion script does (bench/export_onnx.py, run by scripts/bench-browser):
// onnx/model.onnx (fp32) and onnx/model_quantized.onnx (q8, dynamic int8).
import path from 'node:path';
import fs from 'node:fs';

// Under these prefixes run.mjs serves files with COOP/COEP (wasm threads).
export const ISOLATED_PREFIXES = ['/bench/transformersjs.html', '/tjs/', '/ort/', '/tjs-models/'];

export function tjsMounts(here, onnxDir) {
  const pkg = path.join(here, 'node_modules', '@huggingface', 'transformers');
  const ort = path.join(here, 'node_modules', 'onnxruntime-web', 'dist');
  return [['/tjs/', path.join(pkg, 'dist')], ['/ort/', ort], ['/tjs-models/test-model/', onnxDir]];
}

export function tjsVersions(here) {
  const read = (p) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', p, 'package.json'), 'utf8')).version;
  return { transformers: read('@huggingface/transformers'), ort: read('onnxruntime-web') };
}

// One fresh page (onnxruntime-web fixes its thread count at its first
// session), one load, a first generation (warm-up), then the measured one.
export async function runTjs(browser, origin, { dtype, threads, prompt, tokens, log }) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') log(`[tjs console.error]`, m.text()); });
  page.on('pageerror', (e) => log('[tjs pageerror]', e.message));
  try {
    await page.goto(`${origin}/bench/transformersjs.html?threads=${threads}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
    const ids = await page.evaluate((p) => window.benchEncode(p), prompt);
    const load = await page.evaluate((d) => window.benchLoad(d), dtype);
    const mem_after_load = await page.evaluate(() => (self.__benchWasmMemories || []).reduce((a, m) => a + m.buffer.byteLength, 0));
    await page.evaluate(([i, n]) => window.benchGenerate(i, n), [ids, tokens]);
    const g = await page.evaluate(([i, n]) => window.benchGenerate(i, n), [ids, tokens]);
    return {
      load_ms: load.load_ms, threads: load.threads, isolated: load.isolated, mem_after_load,
      prompt_tokens: ids.length, generated_tokens: g.generated,
      prefill_ms: g.first_ms, prefill_tok_s: ids.length / g.first_ms * 1000,
      decode_tok_s: (g.generated - 1) / g.decode_ms * 1000, ttft_ms: g.first_ms, token_ids: g.token_ids,
    };
  } finally {
    await page.close();
  }
}
