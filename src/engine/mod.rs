//! The engine: pure Rust, from model bytes to generated tokens. It never
//! imports wasm-bindgen, web-sys, js-sys or leptos and never fetches: callers
//! hand it bytes. Modules in the order data flows:
//!
//! - [`model`]: bytes (GGUF or safetensors) -> weights; the llama forward pass
//!   ([`half_kernel`]: its f16-weights matmul).
//! - [`tokenizer`]: text <-> ids (tokenizer.json, or rebuilt from GGUF metadata).
//! - [`template`]: messages -> prompt string with the checkpoint's chat template.
//! - [`generate`]: logits -> next token (sampling, stop rules, timings).
//! - [`llm`]: the four joined: [`LanguageModel`] with `start` / `next_token`.
//! - [`modes`]: Foundation / Instruct / Chat: which prompt each mode builds.
//! - [`error`]: the one error type.

pub mod error;
pub mod half_kernel;
pub mod generate;
pub mod llm;
pub mod model;
pub mod modes;
pub mod template;
pub mod tokenizer;

pub use error::{EngineError, Result};
pub use generate::{Candidate, Generation, SamplingSettings, Step, StopReason, Timings};
pub use llm::{CheckpointFiles, LanguageModel, ModelFiles};
pub use model::{Config, Precision, ReadSeek};
pub use modes::{Conversation, Mode};
pub use template::{ChatTemplate, Message};
