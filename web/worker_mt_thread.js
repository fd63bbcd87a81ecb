// One helper thread of the threaded worker (src/worker/pool.rs): the same
// glue, the same compiled module, the same shared memory; then it takes a
// share of every matrix product until the worker ends.
self.onmessage = (e) => {
  const [glue, module, memory] = e.data;
  self.__threeAnswersPoolThread = true; // its `main` must not start an engine
  importScripts(glue);
  wasm_bindgen.initSync({ module, memory });
  wasm_bindgen.pool_thread_run();
};
