//! The page: Leptos components over a handful of signals. It never runs the
//! engine; it talks to the worker ([`bridge`]) in [`crate::protocol`] messages.
//!
//! - [`text`]: pure helpers (URL query, prompt highlighting, numbers in words).
//! - `state`: the signals (answers, chat, model status, settings).
//! - `bridge`: the worker: start, send, receive, restart after a crash.
//! - `views`: the components.

pub mod text;

#[cfg(target_arch = "wasm32")]
mod bridge;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod views;

/// Mounts the page on `<body>` (from `src/bin/app.rs`).
#[cfg(target_arch = "wasm32")]
pub fn mount() {
    leptos::mount::mount_to_body(views::App);
}
