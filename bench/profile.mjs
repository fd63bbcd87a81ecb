// Where the worker's time goes: a V8 CPU profile of one of our worker's
// threads while it answers, summed per wasm function. Run by
// scripts/profile-browser, which builds copies of the workers that keep
// their function names (the release build drops them).
//
//   node bench/profile.mjs --dist DIR --model GGUF [--loader worker_loader.js]
//        [--tokens 1] [--reps 3] [--thread 0] [--precision auto] [--top 40]
// --loader worker_mt_loader.js?threads=2: the threaded build; --thread 1:
// profile its helper instead of the engine's own thread. --tokens 1: mostly
// the prompt (prefill); 128: mostly decoding.
// Self time: samples in the function itself; inclusive: in it or below.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const a = { loader: 'worker_loader.js', tokens: 1, reps: 3, thread: 0, precision: 'auto', top: 40 };
for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!a.dist || !a.model) throw new Error('usage: profile.mjs --dist DIR --model GGUF [...]');

const gguf = fs.readFileSync(a.model);
const ggufName = path.basename(a.model);
const TYPES = { '.wasm': 'application/wasm', '.js': 'text/javascript', '.html': 'text/html; charset=utf-8' };
const server = http.createServer((req, res) => {
  const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let body = p.endsWith(`/resolve/main/${ggufName}`) ? gguf : null;
  for (const [prefix, dir] of [['/three-answers/', a.dist], ['/bench/', path.join(HERE, 'www')]]) {
    const file = path.join(dir, p.slice(prefix.length));
    if (!body && p.startsWith(prefix) && file.startsWith(dir) && fs.existsSync(file) && fs.statSync(file).isFile()) body = fs.readFileSync(file);
  }
  if (!body) { res.writeHead(404); return res.end(); }
  // Isolated, so that the threaded build can run.
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(p)] || 'application/octet-stream', 'Content-Length': body.length,
    'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });

const self = new Map(), incl = new Map();
let total = 0;
const add = (m, k, v) => m.set(k, (m.get(k) || 0) + v);
try {
  for (let rep = 0; rep < Number(a.reps); rep++) {
    const page = await browser.newPage();
    const workers = [];
    page.on('workercreated', (w) => workers.push(w));
    await page.goto(`${origin}/bench/ours.html`);
    await page.waitForFunction(() => window.benchReady === true);
    await page.evaluate((u) => window.benchStart(u), `${origin}/three-answers/${a.loader}`);
    await page.evaluate(([hub, spec, p]) => window.benchLoad(hub, spec, p), [`${origin}/hub`, `test/model/${ggufName}`, a.precision]);
    const worker = workers[Number(a.thread)];
    if (!worker) throw new Error(`no thread ${a.thread}: ${workers.length} worker(s)`);
    const cdp = worker.client;
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
    await cdp.send('Profiler.start');
    const g = await page.evaluate(([q, n]) => window.benchGenerate(q, n), ['What is the capital of France?', Number(a.tokens)]);
    const { profile } = await cdp.send('Profiler.stop');
    console.error(`rep ${rep + 1}: prefill ${g.timings.prefill_ms.toFixed(1)} ms, decode ${(g.timings.decode_ms || 0).toFixed(1)} ms (${worker.url()})`);
    const node = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
    profile.samples.forEach((id, i) => {
      const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
      total += ms;
      const f = node.get(id).callFrame;
      add(self, f.functionName || `(${f.url.split('/').pop() || 'program'})`, ms);
      const seen = new Set();
      for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
        const name = node.get(cur).callFrame.functionName;
        if (name && !seen.has(name)) { seen.add(name); add(incl, name, ms); }
      }
    });
    await page.evaluate(() => window.benchExit());
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
const reps = Number(a.reps);
const show = (m) => [...m].sort((x, y) => y[1] - x[1]).slice(0, Number(a.top))
  .map(([n, t]) => `${(t / reps).toFixed(1).padStart(8)} ms ${((100 * t) / total).toFixed(1).padStart(5)}%  ${n.slice(0, 160)}`).join('\n');
console.log(`${a.loader}, thread ${a.thread}, ${a.tokens} token(s): ${(total / reps).toFixed(1)} ms profiled per answer\n-- self --\n${show(self)}\n-- inclusive --\n${show(incl)}`);
