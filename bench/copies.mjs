// This machine's ceiling for N threads (bench/run.mjs --copies N): N
// single-thread workers, one page each, all loaded first and then asked at
// the same moment. No copy ever waits for another, so what they decode
// together bounds what one engine on N threads could reach here: the cores'
// shared memory bandwidth, caches and clock, and the browser's own threads
// taking a core now and then, with no synchronisation cost at all.

/**
 * open(i) → page; load(page) → loaded worker; generate(page, loaded) → a run
 * with decode_tok_s and prefill_tok_s. Returns each copy's figures and their sums.
 */
export async function runCopies(n, { open, load, generate }) {
  const pages = [];
  try {
    for (let i = 0; i < n; i++) pages.push(await open(i));
    const loaded = [];
    for (const p of pages) loaded.push(await load(p));
    const runs = await Promise.all(pages.map((p, i) => generate(p, loaded[i])));
    const sum = (k) => runs.reduce((s, r) => s + r[k], 0);
    return {
      each_decode_tok_s: runs.map((r) => r.decode_tok_s), each_prefill_tok_s: runs.map((r) => r.prefill_tok_s),
      decode_tok_s: sum('decode_tok_s'), prefill_tok_s: sum('prefill_tok_s'), token_ids: runs.map((r) => r.token_ids),
    };
  } finally {
    for (const p of pages) await p.close().catch(() => {});
  }
}
