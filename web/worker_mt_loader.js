// The threaded worker's entry (the page starts it when it is cross-origin
// isolated): the engine built with wasm threads on shared memory. Its pool
// (src/worker/pool.rs) starts helpers from worker_mt_thread.js, which load
// the same glue; `?threads=N` is the page's choice (0: one per core, at most 4).
self.__threeAnswersThreads = Number(new URL(self.location.href).searchParams.get('threads')) || 0;
self.__threeAnswersGlue = new URL('worker_mt.js', self.location.href).href;
self.__threeAnswersPoolScript = new URL('worker_mt_thread.js', self.location.href).href;
importScripts(self.__threeAnswersGlue);
// A module that fails to load or compile is thrown where the page sees it (the
// worker's error event), so the single-thread engine takes over at once.
wasm_bindgen({ module_or_path: new URL('worker_mt_bg.wasm', self.location.href).href })
  .catch((e) => setTimeout(() => { throw new Error(`the threaded engine's module did not load: ${e}`); }));
