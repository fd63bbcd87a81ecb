//! The threaded worker's pool (wasm built with `+atomics` only): helper
//! threads on nested Web Workers that share this worker's module and memory,
//! so `kernels::batch` can share a product's tiles out as it does natively.
//!
//! Why by hand: wasm-bindgen-rayon needs an ES-module build (Trunk builds
//! workers `no-modules`), and rayon's sleeping threads wake too slowly for a
//! token's 121 parallel regions (`kernels/src/spin_pool.rs`). The pattern is
//! wasm-bindgen's raytrace-parallel example: each helper loads the same glue
//! and instantiates the same module on the same memory.

use wasm_bindgen::prelude::*;

use crate::engine::kernels::spin_pool;

/// The most threads the worker starts, whatever the page asks: decoding is
/// memory-bound, so more cores add little and every helper spins a while
/// after each product.
pub const MAX_THREADS: usize = 8;

/// A helper's life (called by `web/worker_mt_thread.js` once its module runs).
#[wasm_bindgen]
pub fn pool_thread_run() {
    spin_pool::helper_loop();
}

/// True in a helper: its module's `main` must not start a second engine.
pub fn in_pool_thread() -> bool {
    flag("__threeAnswersPoolThread").is_truthy()
}

fn flag(name: &str) -> JsValue {
    js_sys::Reflect::get(&js_sys::global(), &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The threads the page asked for (`worker_mt_loader.js?threads=N`, 0: as
/// many as the cores, at most 4), capped at [`MAX_THREADS`].
pub fn asked_threads(cores: usize) -> usize {
    match flag("__threeAnswersThreads").as_f64().unwrap_or(0.0) as usize {
        0 => cores.clamp(1, 4),
        n => n.min(MAX_THREADS),
    }
}

/// Starts `threads - 1` helpers (this worker is the other thread: it takes
/// a share of every product too). Helpers count themselves in once running
/// (`spin_pool::helpers`), which is what the page is told.
pub fn start(threads: usize) -> Result<(), String> {
    let script = flag("__threeAnswersPoolScript").as_string().ok_or("the loader named no helper script")?;
    let glue = flag("__threeAnswersGlue").as_string().ok_or("the loader named no glue script")?;
    for _ in 1..threads {
        let worker = web_sys::Worker::new(&script).map_err(|e| format!("a helper thread did not start: {e:?}"))?;
        let msg = js_sys::Array::of3(&glue.as_str().into(), &wasm_bindgen::module(), &wasm_bindgen::memory());
        worker.post_message(&msg).map_err(|e| format!("a helper thread got no module: {e:?}"))?;
    }
    Ok(())
}
