//! The page (Leptos, in the browser's main thread). Empty on native targets.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    three_answers::app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
