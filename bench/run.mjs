// Browser benchmark driver (issue 5), run by scripts/bench-browser.
//
//   node bench/run.mjs --dist DIR --model GGUF [--reps 3] [--tokens 128]
//                      [--only wllama|ours] [--precisions auto,stored]
//                      [--native-json FILE] [--json OUT]
// --precisions: the `precision` our worker's Load message asks for, one row
// each; the first is the headline ("ours" in the last line).
// --onnx DIR: also transformers.js on the test model's ONNX export (DIR as
// bench/export_onnx.py writes it), each of --tjs dtype:threads (default
// q8:1,q8:2,fp32:1,fp32:2), one fresh page per load.
// --checkpoint DIR: also load a Hugging Face checkpoint folder (the official
// checkpoints' form: bf16 safetensors) into both slots as two distinct repos,
// at the default precision, and measure both loads, memory and speed.
// --wllama-threads 2,4: also wllama's multi-thread build at those thread
// counts (its one wasm runs pthreads when the page is cross-origin isolated;
// the server then isolates the wllama page too).
// --copies 2: also that many single-thread workers at once (bench/copies.mjs):
// this machine's ceiling for two threads, no synchronisation at all.
// BENCH_JS_FLAGS (env): extra V8 flags for Chromium's --js-flags, for
// experiments (e.g. --no-liftoff: everything compiled optimized up front).
//
// One static server on 127.0.0.1 (this process) serves:
//   /three-answers/...   the release page (dist/), worker_loader.js with bench/www/probe.js prepended
//   /bench/...           bench/www/ (the two bench pages and the probe)
//   /wllama/...          bench/node_modules/@wllama/wllama/esm/ (wllama's esm build and its wasm)
//   /hub/{repo}/resolve/main/{file}, /model.gguf   the GGUF, held in memory
//   /hub/test/ckpt-{a,b}/resolve/main/{file}         the --checkpoint folder's files
// Then one headless Chromium (/usr/bin/chromium via playwright-core) runs, per
// repetition, wllama then our worker, each from a fresh worker (so each load is
// a real load and no KV cache survives), and the medians are printed as a
// Markdown results section. The last line is
//   decode tok/s ours=X wllama=Y ratio=R
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { ISOLATED_PREFIXES, runTjs, tjsMounts, tjsVersions } from './transformersjs.mjs';
import { runCopies } from './copies.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);

const PROMPT =
  '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
  '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n';
const QUESTION = 'What is the capital of France?';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

function parseArgs(argv) {
  const a = { reps: 3, tokens: 128, only: null, dist: path.join(ROOT, 'dist'), model: null, nativeJson: null, json: null, base: '/three-answers/', precisions: ['auto', 'stored'], checkpoint: null, mt: [], wllamaMt: [], copies: 0, onnx: null, tjs: ['q8:1', 'q8:2', 'fp32:1', 'fp32:2'] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    if (k === '--reps') a.reps = Number(v());
    else if (k === '--tokens') a.tokens = Number(v());
    else if (k === '--only') a.only = v();
    else if (k === '--dist') a.dist = v();
    else if (k === '--model') a.model = v();
    else if (k === '--native-json') a.nativeJson = v();
    else if (k === '--json') a.json = v();
    else if (k === '--base') a.base = v();
    else if (k === '--checkpoint') a.checkpoint = v();
    else if (k === '--onnx') a.onnx = v();
    else if (k === '--mt') a.mt = v().split(',').map((x) => x.trim()).filter(Boolean);
    else if (k === '--wllama-threads') a.wllamaMt = v().split(',').map(Number).filter((n) => n > 1);
    else if (k === '--copies') a.copies = Number(v());
    else if (k === '--tjs') a.tjs = v().split(',').map((x) => x.trim()).filter(Boolean);
    else if (k === '--precisions') a.precisions = v().split(',').map((x) => x.trim()).filter(Boolean);
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.model) throw new Error('--model GGUF is required');
  return a;
}

const log = (...x) => console.error('bench-browser:', ...x);
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((p, q) => p - q);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

// ---------------------------------------------------------------- server
const TYPES = { '.wasm': 'application/wasm', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.html': 'text/html; charset=utf-8', '.json': 'application/json', '.map': 'application/json' };

const CKPT_REPOS = ['test/ckpt-a', 'test/ckpt-b'];

function startServer({ dist, base, model, checkpoint, onnx, mt, wllamaMt }) {
  const gguf = fs.readFileSync(model);
  const ggufName = path.basename(model);
  const probe = fs.readFileSync(path.join(HERE, 'www', 'probe.js'));
  const wllamaDir = path.join(HERE, 'node_modules', '@wllama', 'wllama', 'esm');
  const mounts = [[base, dist], ['/bench/', path.join(HERE, 'www')], ['/wllama/', wllamaDir], ...(onnx ? tjsMounts(HERE, onnx) : [])];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = decodeURIComponent(url.pathname);
    // Cross-origin isolation (SharedArrayBuffer, wasm threads) for the engines run threaded.
    const isolation = [...ISOLATED_PREFIXES, ...(mt ? [base, '/bench/ours.html'] : []), ...(wllamaMt ? ['/bench/wllama.html', '/wllama/'] : [])].some((x) => p.startsWith(x))
      ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    const send = (status, body, type, extra = isolation) => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (p === '/model.gguf' || (p.startsWith('/hub/') && p.endsWith(`/resolve/main/${ggufName}`))) {
      return send(200, gguf, 'application/octet-stream');
    }
    const ckpt = checkpoint && CKPT_REPOS.find((r) => p.startsWith(`/hub/${r}/resolve/main/`));
    if (ckpt) {
      const file = path.join(checkpoint, path.basename(p));
      if (!fs.existsSync(file)) return send(404, Buffer.from('not found'), 'text/plain');
      return send(200, fs.readFileSync(file), 'application/octet-stream');
    }
    for (const [prefix, dir] of mounts) {
      if (!p.startsWith(prefix)) continue;
      let file = path.join(dir, p.slice(prefix.length));
      if (!file.startsWith(dir)) break;
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
      if (!fs.existsSync(file)) break;
      let body = fs.readFileSync(file);
      if (prefix === base && path.basename(file) === 'worker_loader.js') body = Buffer.concat([probe, Buffer.from('\n'), body]);
      return send(200, body, TYPES[path.extname(file)] || 'application/octet-stream');
    }
    if (p === '/favicon.ico') return send(204, Buffer.alloc(0), 'image/x-icon');
    send(404, Buffer.from('not found'), 'text/plain');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}`, ggufName })));
}

// ---------------------------------------------------------------- browser side
async function openPage(browser, origin, file, tag) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`[${tag} console.${m.type()}]`, m.text()); });
  page.on('pageerror', (e) => log(`[${tag} pageerror]`, e.message));
  await page.goto(`${origin}/bench/${file}`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
  return page;
}

const wasmBytes = (worker) =>
  worker.evaluate(() => (self.__benchWasmMemories || []).map((m) => m.buffer.byteLength)).then((a) => a.reduce((x, y) => x + y, 0), () => null);

async function runWllama(page, origin, tokens, threads = 1) {
  const workerP = page.waitForEvent('worker', { timeout: 120000 });
  const load = await page.evaluate((n) => window.benchLoad(n), threads);
  if (load.threads !== threads) throw new Error(`wllama ran ${load.threads} thread(s), ${threads} asked (multithread: ${load.multithread})`);
  const worker = await workerP;
  const mem_after_load = await wasmBytes(worker);
  const g = await page.evaluate(([p, n]) => window.benchGenerate(p, n), [PROMPT, tokens]);
  const mem_after_generate = await wasmBytes(worker);
  await page.evaluate(() => window.benchExit());
  const t = g.timings || {};
  return {
    load_ms: load.load_ms, threads: load.threads, multithread: load.multithread,
    mem_after_load, mem_after_generate,
    prompt_tokens: t.prompt_n, generated_tokens: t.predicted_n,
    prefill_ms: t.prompt_ms, decode_ms: t.predicted_ms,
    prefill_tok_s: t.prompt_n / t.prompt_ms * 1000,
    decode_tok_s: t.predicted_n / t.predicted_ms * 1000,
    ttft_ms: g.first_ms, total_ms: g.total_ms,
    wall_decode_tok_s: g.chunks > 1 ? (g.chunks - 1) / (g.last_ms - g.first_ms) * 1000 : null,
    chunks: g.chunks, text: g.text, token_ids: g.tokens,
  };
}

async function runOurs(page, origin, base, ggufName, tokens, precision, loader = 'worker_loader.js') {
  return generateOurs(page, await loadOurs(page, origin, base, ggufName, precision, loader), tokens);
}

/** A fresh worker in `page` with the test model loaded: what `generateOurs` needs. */
async function loadOurs(page, origin, base, ggufName, precision, loader = 'worker_loader.js') {
  const workerP = page.waitForEvent('worker', { timeout: 120000 });
  const start = await page.evaluate((u) => window.benchStart(u), `${origin}${base}${loader}`);
  const worker = await workerP;
  const mem_after_start = await wasmBytes(worker);
  const load = await page.evaluate(([hub, spec, p]) => window.benchLoad(hub, spec, p),
    [`${origin}/hub`, `test/SmolLM2-135M-Instruct-GGUF/${ggufName}`, precision]);
  const mem_after_load = await wasmBytes(worker);
  return { worker, start, load, mem_after_start, mem_after_load };
}

async function generateOurs(page, { worker, start, load, mem_after_start, mem_after_load }, tokens) {
  const g = await page.evaluate(([q, n]) => window.benchGenerate(q, n), [QUESTION, tokens]);
  const mem_after_generate = await wasmBytes(worker);
  await page.evaluate(() => window.benchExit());
  const t = g.timings || {};
  const prefilled = t.prompt_tokens - t.reused_tokens;
  return {
    startup_ms: start.startup_ms, load_ms: load.load_ms, fetch_ms: load.fetch_ms, worker_load_ms: load.worker_load_ms,
    weight_bytes: load.weight_bytes, mem_after_start, mem_after_load, mem_after_generate,
    prompt: g.prompt, prompt_ok: g.prompt === PROMPT, stop_reason: g.stop_reason,
    prompt_tokens: t.prompt_tokens, reused_tokens: t.reused_tokens, generated_tokens: t.generated_tokens,
    prefill_ms: t.prefill_ms, decode_ms: t.decode_ms,
    prefill_tok_s: prefilled / t.prefill_ms * 1000,
    decode_tok_s: (t.generated_tokens - 1) / t.decode_ms * 1000,
    ttft_ms: g.first_ms, total_ms: g.total_ms,
    wall_decode_tok_s: g.chunks > 1 ? (g.chunks - 1) / (g.last_ms - g.first_ms) * 1000 : null,
    chunks: g.chunks, text: g.text, token_ids: g.token_ids,
  };
}

// Ten chat turns on the GGUF at the default precision: time to first token per turn.
async function runChat(page, origin, base, ggufName) {
  await page.evaluate((u) => window.benchStart(u), `${origin}${base}worker_loader.js`);
  await page.evaluate(([hub, spec]) => window.benchLoad(hub, spec, 'auto'), [`${origin}/hub`, `test/SmolLM2-135M-Instruct-GGUF/${ggufName}`]);
  const rows = await page.evaluate(() => window.benchChat(10, 24));
  await page.evaluate(() => window.benchExit());
  return rows;
}

async function runCheckpoints(page, origin, base, tokens) {
  const workerP = page.waitForEvent('worker', { timeout: 120000 });
  const start = await page.evaluate((u) => window.benchStart(u), `${origin}${base}worker_loader.js`);
  const worker = await workerP;
  const load = await page.evaluate(([hub, a, b]) => window.benchLoadBoth(hub, a, b, 'auto'), [`${origin}/hub`, ...CKPT_REPOS]);
  const mem_after_load = await wasmBytes(worker);
  const g = await page.evaluate(([q, n]) => window.benchGenerate(q, n), [QUESTION, tokens]);
  await page.evaluate(() => window.benchExit());
  const t = g.timings || {};
  return {
    startup_ms: start.startup_ms, load_ms: load.load_ms, load_foundation_ms: load.prepare_ms.foundation, load_instruct_ms: load.prepare_ms.instruct,
    weight_bytes: load.weight_bytes, mem_after_load, prompt_ok: g.prompt === PROMPT,
    prompt_tokens: t.prompt_tokens, generated_tokens: t.generated_tokens,
    prefill_tok_s: (t.prompt_tokens - t.reused_tokens) / t.prefill_ms * 1000,
    decode_tok_s: (t.generated_tokens - 1) / t.decode_ms * 1000,
    ttft_ms: g.first_ms, text: g.text, token_ids: g.token_ids,
  };
}

// ---------------------------------------------------------------- report
const f = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const mib = (b) => (b ? `${(b / 1048576).toFixed(1)} MiB` : 'n/a');

function summarize(runs) {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const m = {};
  for (const k of keys) if (runs.every((r) => typeof r[k] === 'number')) m[k] = median(runs.map((r) => r[k]));
  return m;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const base = '/' + args.base.replace(/^\/+|\/+$/g, '') + '/';
  const engines = args.only ? [args.only] : ['wllama', 'ours'];
  const wllamaPkg = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', '@wllama', 'wllama', 'package.json'), 'utf8'));
  const pwPkg = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', 'playwright-core', 'package.json'), 'utf8'));
  const { server, origin, ggufName } = await startServer({ dist: args.dist, base, model: args.model, checkpoint: args.checkpoint, onnx: args.onnx, mt: args.mt.length > 0, wllamaMt: args.wllamaMt.length > 0 });
  log(`serving on ${origin} (dist ${args.dist} at ${base}, model ${args.model})`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.env.BENCH_JS_FLAGS ? [...CHROMIUM_ARGS, `--js-flags=${process.env.BENCH_JS_FLAGS}`] : CHROMIUM_ARGS });
  const chromiumVersion = browser.version();
  const ourKeys = [...args.precisions.map((p) => `ours:${p}`), ...args.mt.map((p) => `ours:${p.split('@')[0]}:threads:${p.split('@')[1] || 0}`)];
  const ckptKeys = args.checkpoint && args.only !== 'wllama' ? ['ckpt'] : [];
  const wllamaKeys = ['wllama', ...args.wllamaMt.map((n) => `wllama:${n}`)];
  const jobs = args.only === 'wllama' ? wllamaKeys : args.only === 'ours' ? [...ourKeys, ...ckptKeys] : [...wllamaKeys, ...ourKeys, ...ckptKeys];
  const tjsKeys = args.onnx && !args.only ? args.tjs.map((t) => `tjs:${t}`) : [];
  jobs.push(...tjsKeys);
  const results = Object.fromEntries([...wllamaKeys, ...ourKeys, 'ckpt', 'copies', ...tjsKeys].map((k) => [k, []]));
  let libllama = null;
  let chatRows = [];
  try {
    const pages = {};
    if (engines.includes('wllama')) {
      pages.wllama = await openPage(browser, origin, 'wllama.html', 'wllama');
      await pages.wllama.evaluate((u) => window.benchFetchModel(u), `${origin}/model.gguf`);
      libllama = await pages.wllama.evaluate(() => window.benchVersion());
    }
    if (engines.includes('ours')) pages.ours = await openPage(browser, origin, 'ours.html', 'ours');
    for (let rep = 1; rep <= args.reps; rep++) {
      for (const e of jobs) {
        if (e.startsWith('tjs:')) {
          const [dtype, threads] = e.slice(4).split(':');
          const r = await runTjs(browser, origin, { dtype, threads: Number(threads), prompt: PROMPT, tokens: args.tokens, log });
          results[e].push(r);
          log(`rep ${rep} ${e}: load ${f(r.load_ms, 0)} ms, ${r.threads} thread(s)${r.isolated ? ', isolated' : ''}, prefill ${f(r.prefill_tok_s)} tok/s (${r.prompt_tokens} tok), ` +
            `decode ${f(r.decode_tok_s, 2)} tok/s (${r.generated_tokens} tok), mem ${mib(r.mem_after_load)}`);
          continue;
        }
        const r = e.startsWith('wllama') ? await runWllama(pages.wllama, origin, args.tokens, Number(e.split(':')[1] || 1))
          : e === 'ckpt' ? await runCheckpoints(pages.ours, origin, base, args.tokens)
          : await runOurs(pages.ours, origin, base, ggufName, args.tokens, e.split(':')[1], e.includes(':threads') ? `worker_mt_loader.js?threads=${e.split(':')[3] || 0}` : undefined);
        results[e].push(r);
        if (e === 'ckpt') {
          log(`rep ${rep} ckpt: load both ${f(r.load_ms, 0)} ms (foundation ${f(r.load_foundation_ms, 0)}, instruct ${f(r.load_instruct_ms, 0)}), ` +
            `prefill ${f(r.prefill_tok_s)} tok/s, decode ${f(r.decode_tok_s, 2)} tok/s, mem ${mib(r.mem_after_load)} (weights ${mib(r.weight_bytes)})`);
          continue;
        }
        log(`rep ${rep} ${e}: load ${f(r.load_ms, 0)} ms, prefill ${f(r.prefill_tok_s)} tok/s (${r.prompt_tokens} tok), ` +
          `decode ${f(r.decode_tok_s, 2)} tok/s (${r.generated_tokens} tok; in-page ${f(r.wall_decode_tok_s, 2)}), mem ${mib(r.mem_after_load)}`);
      }
      if (args.copies > 1 && pages.ours) {
        const c = await runCopies(args.copies, {
          open: (i) => openPage(browser, origin, 'ours.html', `copy ${i}`),
          load: (p) => loadOurs(p, origin, base, ggufName, args.precisions[0]),
          generate: (p, l) => generateOurs(p, l, args.tokens),
        });
        results.copies.push(c);
        log(`rep ${rep} ${args.copies} copies at once (${args.precisions[0]}, 1 thread each): decode ${c.each_decode_tok_s.map((x) => f(x, 2)).join(' + ')} = ${f(c.decode_tok_s, 2)} tok/s, ` +
          `prefill ${c.each_prefill_tok_s.map((x) => f(x)).join(' + ')} tok/s`);
      }
    }
    if (pages.ours) {
      chatRows = await runChat(pages.ours, origin, base, ggufName);
      for (const r of chatRows) log(`chat turn ${r.turn}: ${r.prompt_tokens} prompt tokens (${r.reused_tokens} re-used), prefill ${f(r.prefill_ms, 0)} ms, TTFT ${f(r.ttft_ms, 0)} ms`);
    }
  } finally {
    await browser.close();
    server.close();
  }

  const native = args.nativeJson && fs.existsSync(args.nativeJson) ? fs.readFileSync(args.nativeJson, 'utf8').trim().split('\n') : [];
  const nativeRows = native.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);

  const W = summarize(results.wllama);
  const head = ourKeys[0];
  const oursHead = results[head] || [];
  const O = summarize(oursHead);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ chromiumVersion, wllama: wllamaPkg.version, libllama, results, native: nativeRows }, null, 1));

  // Same computation? The generated texts' common beginning (wllama's stream gives no token ids).
  const wt = results.wllama[0]?.text, ot = oursHead[0]?.text;
  let agree = null;
  if (typeof wt === 'string' && typeof ot === 'string') {
    agree = 0;
    while (agree < Math.min(wt.length, ot.length) && wt[agree] === ot[agree]) agree++;
  }

  const cpu = (() => { try { return execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
  const out = [];
  out.push('## Browser benchmark (scripts/bench-browser)', '');
  out.push(`Command: \`scripts/bench-browser\`  ·  ${new Date().toISOString().slice(0, 10)}  ·  ${cpu}, ${(await import('node:os')).cpus().length} cores`);
  out.push(`Chromium ${chromiumVersion} headless (${CHROMIUM}, playwright-core ${pwPkg.version}), @wllama/wllama ${wllamaPkg.version} (libllama ${libllama ?? '?'}), ` +
    `model ${ggufName}, ChatML prompt for "${QUESTION}" (${O.prompt_tokens ?? W.prompt_tokens ?? '?'} tokens), greedy, ${args.tokens} new tokens ignoring EOS, 1 thread, median of ${args.reps} fresh loads.`, '');
  out.push('| engine | load ms | prefill tok/s | decode tok/s | decode tok/s in page | TTFT ms | wasm memory after load |');
  out.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const k of ourKeys) {
    if (!results[k].length) continue;
    const S = summarize(results[k]);
    out.push(`| three-answers worker (precision ${k.slice(5)}${k === head ? ', headline' : ''}) | ${f(S.load_ms, 0)} (+${f(S.startup_ms, 0)} worker start) | ${f(S.prefill_tok_s)} | ${f(S.decode_tok_s, 2)} | ${f(S.wall_decode_tok_s, 2)} | ${f(S.ttft_ms, 0)} | ${mib(S.mem_after_load)} (weights ${mib(S.weight_bytes)}) |`);
  }
  for (const k of wllamaKeys) {
    if (!results[k].length) continue;
    const S = summarize(results[k]);
    const how = k === 'wllama' ? 'single-thread' : `multi-thread build, ${k.split(':')[1]} threads`;
    out.push(`| wllama ${wllamaPkg.version} (${how}) | ${f(S.load_ms, 0)} (incl. worker start) | ${f(S.prefill_tok_s)} | ${f(S.decode_tok_s, 2)} | ${f(S.wall_decode_tok_s, 2)} | ${f(S.ttft_ms, 0)} | ${mib(S.mem_after_load)} |`);
  }
  const tjsV = tjsKeys.length ? tjsVersions(HERE) : null;
  for (const k of tjsKeys) {
    if (!results[k].length) continue;
    const S = summarize(results[k]);
    const [dtype, threads] = k.slice(4).split(':');
    out.push(`| transformers.js ${tjsV.transformers} (onnxruntime-web ${tjsV.ort}), ${dtype}, ${threads} thread${threads === '1' ? '' : 's'}${results[k].every((r) => r.threads === Number(threads)) ? '' : ' (WARNING: ran ' + results[k][0].threads + ')'} | ${f(S.load_ms, 0)} | ${f(S.prefill_tok_s)} | ${f(S.decode_tok_s, 2)} | | ${f(S.ttft_ms, 0)} | ${mib(S.mem_after_load)} |`);
  }
  for (const n of nativeRows) {
    const name = n.engine === 'three-answers' ? `three-answers native CLI (${n.precision})` : `${n.engine} native (llama-cpp-python)`;
    out.push(`| ${name} | ${n.load_ms !== undefined ? f(n.load_ms, 0) : 'n/a'} | ${f(n.prefill_tok_s)} | ${f(n.decode_tok_s, 2)} | | | |`);
  }
  out.push('');
  if (results.ckpt.length) {
    const C = summarize(results.ckpt);
    out.push(`Two distinct checkpoint repos (${path.basename(args.checkpoint)}: config.json, tokenizer files, model.safetensors as stored), one in each slot, precision auto (the default):`, '');
    out.push('| engine | load both ms (foundation + instruct) | prefill tok/s | decode tok/s | TTFT ms | wasm memory after loading both |');
    out.push('|---|---:|---:|---:|---:|---:|');
    out.push(`| three-answers worker, two checkpoints | ${f(C.load_ms, 0)} (${f(C.load_foundation_ms, 0)} + ${f(C.load_instruct_ms, 0)}) | ${f(C.prefill_tok_s)} | ${f(C.decode_tok_s, 2)} | ${f(C.ttft_ms, 0)} | ` +
      `${mib(C.mem_after_load)} (weights ${mib(C.weight_bytes)}: ${f(C.mem_after_load / C.weight_bytes, 2)}×) |`);
    out.push('- load both: for each slot, `preparing` (its files in the worker as Blobs) → `loaded` (weights converted, model ready), summed.', '');
  }
  if (chatRows.length) {
    out.push('A 10-turn chat in our worker (GGUF, precision auto; each turn: "Tell me one fact about the number N.", up to 24 greedy tokens; the worker re-uses the KV cache of the shared prefix):', '');
    out.push('| turn | prompt tokens | re-used | new | prefill ms | TTFT ms (in page) |');
    out.push('|---:|---:|---:|---:|---:|---:|');
    for (const r of chatRows) out.push(`| ${r.turn} | ${r.prompt_tokens} | ${r.reused_tokens} | ${r.prompt_tokens - r.reused_tokens} | ${f(r.prefill_ms, 0)} | ${f(r.ttft_ms, 0)} |`);
    out.push('');
  }
  out.push('- load: ours = `preparing` → `loaded` message (the GGUF bytes already in the worker\'s memory → model ready); worker start = `new Worker` → `ready` (wasm fetch, compile, instantiate). ' +
    'wllama = `loadModel([Blob])` from a Blob already in the page (worker + wasm start, then llama.cpp\'s load; `warmup: false`).');
  out.push('- prefill / decode: each engine\'s own timers. Ours: `Timings` of the `done` message (prefill = prompt tokens / prefill_ms; decode = (generated − 1) / decode_ms, the forward passes after the first token, excluding the yields between tokens). ' +
    'wllama: llama-server\'s `timings` (prompt_n / prompt_ms; predicted_n / predicted_ms).');
  out.push('- decode in page: (tokens streamed − 1) / (last − first token arrival) measured in the page, the same way for both (includes per-token messaging). TTFT: request posted → first token in the page.');
  out.push('- wasm memory: byteLength of every WebAssembly.Memory of the benchmarked worker, read right after load (a probe loaded first in the worker records them).');
  if (agree !== null) out.push(`- Same computation check: the two greedy answers agree on their first ${agree} characters (${JSON.stringify(ot.slice(0, agree))}); ` +
    `then wllama: ${JSON.stringify(wt.slice(agree, agree + 40))}…, ours (${head.slice(5)}): ${JSON.stringify(ot.slice(agree, agree + 40))}…`);
  if (!ourKeys.flatMap((k) => results[k]).every((r) => r.prompt_ok)) out.push(`- WARNING: our worker's prompt differs from the benchmark prompt: ${JSON.stringify(oursHead[0] && oursHead[0].prompt)}`);
  const { copies, ...single } = results;
  const counts = [...Object.values(single).flat().map((r) => r.generated_tokens), ...copies.flatMap((c) => c.token_ids.map((ids) => ids.length))];
  const badN = counts.filter((n) => n !== args.tokens);
  if (badN.length) out.push(`- WARNING: some runs did not generate exactly ${args.tokens} tokens: ${badN.join(', ')}`);
  if (tjsKeys.length) {
    out.push('- transformers.js: one fresh page per load (its thread count is fixed at its first session), served cross-origin isolated (COOP/COEP); the prompt\'s ids from its own tokenizer; a first generation after load, then the measured one (its steady state). ' +
      'prefill = prompt tokens / (generate() called → first new token streamed), which includes the first sampling step; decode = (new tokens − 1) / (first → last token streamed). load = from_pretrained from 127.0.0.1.');
    const first = (k) => results[k]?.[0]?.token_ids;
    const same = (a, b) => { let i = 0; while (a && b && i < Math.min(a.length, b.length) && a[i] === b[i]) i++; return i; };
    for (const [o, t] of [['ours:f32', 'tjs:fp32:1'], ['ours:f32', 'tjs:fp32:2']]) {
      if (first(o) && first(t)) out.push(`- Same computation check: our ${o.slice(5)} answer and transformers.js ${t.slice(4)} agree on their first ${same(first(o), first(t))} of ${args.tokens} token ids.`);
    }
  }
  out.push('');
  const T = tjsKeys.length ? summarize(results[tjsKeys[0]]) : null;
  if (T) {
    out.push(`prefill tok/s ours=${f(O.prefill_tok_s, 1)} wllama=${f(W.prefill_tok_s, 1)} transformersjs=${f(T.prefill_tok_s, 1)} (${tjsKeys[0].slice(4)}) ratio=${f(O.prefill_tok_s / T.prefill_tok_s, 2)}`);
    out.push(`decode tok/s ours=${f(O.decode_tok_s, 1)} transformersjs=${f(T.decode_tok_s, 1)} (${tjsKeys[0].slice(4)}) ratio=${f(O.decode_tok_s / T.decode_tok_s, 2)}`);
  }
  // Threaded lines: ours and wllama at the same thread count, when both ran.
  for (const k of wllamaKeys.slice(1)) {
    const n = k.split(':')[1], ourK = ourKeys.find((o) => o.endsWith(`:threads:${n}`));
    if (!ourK || !results[k].length || !results[ourK].length) continue;
    const [S, M] = [summarize(results[ourK]), summarize(results[k])];
    out.push(`decode tok/s threads=${n} ours=${f(S.decode_tok_s, 1)} wllama=${f(M.decode_tok_s, 1)} ratio=${f(S.decode_tok_s / M.decode_tok_s, 2)}`);
    out.push(`prefill tok/s threads=${n} ours=${f(S.prefill_tok_s, 1)} wllama=${f(M.prefill_tok_s, 1)} ratio=${f(S.prefill_tok_s / M.prefill_tok_s, 2)}`);
  }
  if (results.copies.length) {
    const C = summarize(results.copies);
    out.push(`prefill tok/s copies=${args.copies} together=${f(C.prefill_tok_s, 1)} one=${f(O.prefill_tok_s, 1)} ratio=${f(C.prefill_tok_s / O.prefill_tok_s, 2)} (this machine's ceiling for ${args.copies} threads)`);
    out.push(`decode tok/s copies=${args.copies} together=${f(C.decode_tok_s, 1)} one=${f(O.decode_tok_s, 1)} ratio=${f(C.decode_tok_s / O.decode_tok_s, 2)} (this machine's ceiling for ${args.copies} threads)`);
  }
  const ratio = O.decode_tok_s && W.decode_tok_s ? O.decode_tok_s / W.decode_tok_s : null;
  out.push(`decode tok/s ours=${f(O.decode_tok_s, 1)} wllama=${f(W.decode_tok_s, 1)} ratio=${f(ratio, 2)}`);
  console.log(out.join('\n'));
}

main().catch((e) => { console.error('bench-browser: ERROR', e && e.stack ? e.stack : e); process.exit(1); });
