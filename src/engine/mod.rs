//! The engine: pure Rust, from model bytes to generated tokens. It never
//! imports wasm-bindgen, web-sys, js-sys or leptos and never fetches: callers
//! hand it bytes. Modules in the order data flows:
//!
//! - [`config`]: the model's shape (GGUF metadata or config.json), checked.
//! - [`weights`]: bytes (GGUF or safetensors) -> weight matrices at a precision.
//! - [`model`]: the llama forward pass over them, with its KV cache
//!   ([`matrix`]: `x · Wᵀ`; [`kernels`]: the dot products, one order in any batch).
//! - [`tokenizer`]: text <-> ids (tokenizer.json, or rebuilt from GGUF metadata).
//! - [`template`]: messages -> prompt string with the checkpoint's chat template.
//! - [`generate`]: logits -> next token (sampling, stop rules, timings).
//! - [`llm`]: the four joined: [`LanguageModel`] with `start` / `next_token`.
//! - [`modes`]: Foundation / Instruct / Chat: which prompt each mode builds.
//! - [`error`]: the one error type.

pub mod config;
pub mod error;
pub mod file_checks;
pub mod kernels;
pub mod matrix;
pub mod generate;
pub mod inspect;
pub mod llm;
pub mod model;
pub mod modes;
pub mod template;
pub mod tokenizer;
pub mod weights;

pub use error::{EngineError, Result};
pub use generate::{Candidate, Generation, SamplingSettings, Step, StopReason, Timings};
pub use llm::{CheckpointFiles, LanguageModel, ModelFiles, TokenScore};
pub use config::Config;
pub use weights::{Precision, ReadSeek};
pub use modes::{Conversation, Mode, Prompt};
pub use template::{ChatTemplate, Message};
