//! The web worker (the engine, no Leptos). Empty on native targets.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    three_answers::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
