//! three-answers: one question asked of a foundation, an instruct and a chat
//! model (SmolLM2-135M), in the browser. See ARCHITECTURE.md for the map.
//!
//! - [`engine`]: pure Rust, bytes -> tokens (native and wasm32).
//! - [`local_files`]: native only, reads models from disk for the CLI and tests.

pub mod engine;
#[cfg(not(target_arch = "wasm32"))]
pub mod local_files;
