//! The engine's one error type. Every message names what was missing or wrong,
//! so the page can show it as is; it becomes a string only at the worker boundary.

/// Everything that can go wrong between model bytes and generated tokens.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{file}: not a GGUF file (it does not start with the bytes \"GGUF\")")]
    NotGguf { file: String },
    #[error("{file}: the file is truncated or corrupt ({detail}); download it again")]
    Corrupt { file: String, detail: String },
    #[error("unsupported model architecture \"{0}\": three-answers runs llama-architecture models such as SmolLM2")]
    UnsupportedArchitecture(String),
    #[error("{file} uses a quantization this app cannot read ({detail}); use a GGUF with Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, K-quants, F16 or F32 tensors")]
    UnsupportedQuantization { file: String, detail: String },
    #[error("tensor {name}: {detail}")]
    BadTensor { name: String, detail: String },
    #[error("model file {0} is missing")]
    MissingFile(String),
    #[error("{file}: {detail}")]
    BadConfig { file: String, detail: String },
    #[error("tokenizer could not be read: {0}")]
    Tokenizer(String),
    #[error("the chat template failed: {0}")]
    Template(String),
    #[error("the model has no chat template, so it cannot be asked as an instruct or chat model")]
    NoChatTemplate,
    #[error("the prompt is {prompt_tokens} tokens but this model reads at most {context} tokens; shorten the question or reset the chat")]
    PromptTooLong { prompt_tokens: usize, context: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{0}")]
    Settings(String),
    #[error("computation failed: {0}")]
    Compute(#[from] candle_core::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
