//! three-answers: one question asked of a foundation, an instruct and a chat
//! model (SmolLM2-135M), in the browser. See ARCHITECTURE.md for the map.
//!
//! - [`engine`]: pure Rust, bytes -> tokens (native and wasm32).
//! - [`local_files`]: native only, reads models from disk for the CLI and tests.

pub mod engine;
#[cfg(not(target_arch = "wasm32"))]
pub mod local_files;

// The browser side (see index.html): the message types both sides share, the
// page (Leptos; never calls the engine) and the worker (the engine's home).
pub mod app;
pub mod hub_links;
pub mod protocol;
pub mod words;
#[cfg(target_arch = "wasm32")]
pub mod worker;
