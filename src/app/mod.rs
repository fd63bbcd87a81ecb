//! The page: Leptos components over a handful of signals. It never runs the
//! engine; it talks to the worker ([`bridge`]) in [`crate::protocol`] messages.
//!
//! - [`state`]: the page's state as plain data (answers, chat, model status,
//!   settings); [`link`]: the address (what its query sets, and the link that
//!   reproduces the page); [`text`]: pure helpers (prompt highlighting, words
//!   for states, sizes and speeds); [`threads`]: which engine build runs
//!   (threaded or single-thread) and why. All unit-tested natively.
//! - `signals`: that state in signals, shared as context.
//! - `bridge`: the worker: start (threaded or single-thread build), send,
//!   receive, restart after a crash; `loading`: the models' loads.
//! - `views`: the components.

pub mod link;
pub mod picker;
pub mod state;
pub mod text;
pub mod threads;

#[cfg(target_arch = "wasm32")]
mod asking;
#[cfg(target_arch = "wasm32")]
mod bridge;
#[cfg(target_arch = "wasm32")]
mod loading;
#[cfg(target_arch = "wasm32")]
mod signals;
#[cfg(target_arch = "wasm32")]
mod views;

/// Mounts the page on `<body>` (from `src/bin/app.rs`).
#[cfg(target_arch = "wasm32")]
pub fn mount() {
    leptos::mount::mount_to_body(views::App);
}
