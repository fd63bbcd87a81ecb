// A cache entry written while its download streams, for the model worker
// (src/worker/cache.rs): it owns the stream's controller and the pending
// `cache.put`. A static script (loaded with importScripts), not code built
// with `new Function`, so the page needs no 'unsafe-eval'.
self.threeAnswersCacheSink = function (cache, url, simulateFull) {
  let ctrl, failed = null;
  const stream = new ReadableStream({ start(c) { ctrl = c; } });
  let done;
  if (simulateFull) {
    done = Promise.reject(new DOMException('The quota has been exceeded (simulated with ?cache=full).', 'QuotaExceededError'));
  } else {
    done = cache.put(url, new Response(stream, { headers: { 'content-type': 'application/octet-stream' } }));
  }
  done = done.then(() => null, (e) => { failed = e; try { ctrl.error(e); } catch (_) {} return e; });
  return {
    write(chunk) { if (!failed) { try { ctrl.enqueue(chunk); } catch (_) {} } },
    finish() {
      try { ctrl.close(); } catch (_) {}
      return done.then((e) => (e ? `${e.name || 'Error'}: ${e.message || e}` : null));
    },
    abort(reason) {
      try { ctrl.error(new Error(reason)); } catch (_) {}
      return done.then(() => cache.delete(url)).then(() => null, () => null);
    },
  };
};
