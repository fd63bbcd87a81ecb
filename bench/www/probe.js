// Wasm memory probe, loaded first in each benchmarked worker (prepended to our
// worker_loader.js by the bench server; imported before wllama's worker module
// by wllama.html). It only records every WebAssembly.Memory the worker creates
// or gets from an instance's exports, in self.__benchWasmMemories, so the
// driver can read their sizes with Playwright's worker.evaluate. No behaviour
// change: the originals are called with the same arguments.
(() => {
  if (self.__benchWasmMemories) return;
  const mems = (self.__benchWasmMemories = []);
  const W = WebAssembly;
  const OrigMemory = W.Memory;
  const OrigInstance = W.Instance;
  const keep = (m) => { if (m instanceof OrigMemory && !mems.includes(m)) mems.push(m); };
  const note = (res) => {
    const inst = res instanceof OrigInstance ? res : res && res.instance;
    if (inst) for (const v of Object.values(inst.exports)) keep(v);
    return res;
  };
  const Memory = function Memory(desc) { const m = new OrigMemory(desc); keep(m); return m; };
  Memory.prototype = OrigMemory.prototype;
  const Instance = function Instance(module, imports) { return note(new OrigInstance(module, imports)); };
  Instance.prototype = OrigInstance.prototype;
  W.Memory = Memory;
  W.Instance = Instance;
  const inst = W.instantiate;
  W.instantiate = function (...a) { return inst.apply(this, a).then(note); };
  const stream = W.instantiateStreaming;
  if (stream) W.instantiateStreaming = function (...a) { return stream.apply(this, a).then(note); };
})();
