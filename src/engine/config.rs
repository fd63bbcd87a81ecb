//! Step 1a of the flow: a model's shape, from GGUF metadata or a Hugging Face
//! `config.json`, checked before anything is sized by it.

use candle_core::quantized::gguf_file;

use super::error::{EngineError, Result};
use super::file_checks::MAX_CONTEXT;

/// The shape of a llama model: what `config.json` or the GGUF metadata says.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
    /// The output layer is the token embedding (SmolLM2): one matrix, not two.
    pub tied_embeddings: bool,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    /// How many weights the model has (its matrices and its embedding, one
    /// or two; the norms are too few to count). None: more than a u64 holds.
    pub fn weight_count(&self) -> Option<u64> {
        let (dim, hidden, kv) = (self.dim as u64, self.hidden_dim as u64, (self.n_kv_heads * self.head_dim()) as u64);
        let per_layer = dim.checked_mul(dim * 2 + kv * 2 + hidden * 3)?;
        let embeddings = if self.tied_embeddings { 1 } else { 2 } * self.vocab_size as u64;
        (self.n_layers as u64).checked_mul(per_layer)?.checked_add(embeddings.checked_mul(dim)?)
    }

    pub(crate) fn check(&self, file: &str) -> Result<()> {
        let bad = |detail: String| Err(EngineError::BadConfig { file: file.into(), detail });
        if [self.dim, self.hidden_dim, self.n_layers, self.n_heads, self.n_kv_heads, self.vocab_size, self.context_length].contains(&0) {
            return bad("a dimension is zero".into());
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!("rms_norm_eps is {}: it must be a positive number", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("the RoPE base (rope_theta) is {}: it must be a positive number", self.rope_theta));
        }
        if self.dim % self.n_heads != 0 || self.n_heads % self.n_kv_heads != 0 {
            return bad(format!(
                "{} heads and {} key/value heads do not divide the width {}",
                self.n_heads, self.n_kv_heads, self.dim
            ));
        }
        if self.head_dim() % 2 != 0 {
            return bad("the head size must be even for RoPE".into());
        }
        Ok(())
    }
}

pub fn config_from_gguf(ct: &gguf_file::Content) -> Result<Config> {
    let arch = ct.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
    if arch != "llama" {
        return Err(EngineError::UnsupportedArchitecture(arch));
    }
    let num = |key: &str| -> Result<usize> {
        let v = ct.metadata.get(&format!("llama.{key}")).ok_or_else(|| EngineError::BadConfig {
            file: "the GGUF file".into(),
            detail: format!("metadata llama.{key} is missing"),
        })?;
        v.to_u32().map(|n| n as usize).or_else(|_| v.to_u64().map(|n| n as usize)).map_err(|e| EngineError::BadConfig {
            file: "the GGUF file".into(),
            detail: format!("metadata llama.{key}: {e}"),
        })
    };
    let float = |key: &str, default: f32| ct.metadata.get(&format!("llama.{key}")).and_then(|v| v.to_f32().ok()).unwrap_or(default);
    let dim = num("embedding_length")?;
    let vocab_size = match ct.tensor_infos.get("token_embd.weight").and_then(|info| info.shape.dims().first()) {
        Some(&rows) => rows,
        None => num("vocab_size")?,
    };
    let config = Config {
        dim,
        hidden_dim: num("feed_forward_length")?,
        n_layers: num("block_count")?,
        n_heads: num("attention.head_count")?,
        n_kv_heads: num("attention.head_count_kv").or_else(|_| num("attention.head_count"))?,
        vocab_size,
        context_length: num("context_length")?.min(MAX_CONTEXT),
        rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5) as f64,
        rope_theta: float("rope.freq_base", 10000.0),
        tied_embeddings: !ct.tensor_infos.contains_key("output.weight"),
    };
    config.check("the GGUF file")?;
    Ok(config)
}

/// The subset of a Hugging Face `config.json` a llama needs.
#[derive(serde::Deserialize)]
struct HfConfig {
    #[serde(default)]
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    vocab_size: usize,
    max_position_embeddings: usize,
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f32,
    #[serde(default)]
    tie_word_embeddings: bool,
}

fn default_rope_theta() -> f32 {
    10000.0
}

pub fn config_from_json(bytes: &[u8]) -> Result<Config> {
    let hf: HfConfig = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::BadConfig { file: "config.json".into(), detail: e.to_string() })?;
    if let Some(t) = &hf.model_type {
        if t != "llama" {
            return Err(EngineError::UnsupportedArchitecture(t.clone()));
        }
    }
    let config = Config {
        dim: hf.hidden_size,
        hidden_dim: hf.intermediate_size,
        n_layers: hf.num_hidden_layers,
        n_heads: hf.num_attention_heads,
        n_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        vocab_size: hf.vocab_size,
        context_length: hf.max_position_embeddings.min(MAX_CONTEXT),
        rms_norm_eps: hf.rms_norm_eps,
        rope_theta: hf.rope_theta,
        tied_embeddings: hf.tie_word_embeddings,
    };
    config.check("config.json")?;
    Ok(config)
}
