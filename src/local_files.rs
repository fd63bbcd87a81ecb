//! Native only: read a model from disk (a `.gguf` file or a checkpoint folder)
//! and hand its bytes to the engine. Used by the CLI and the tests.

use std::path::Path;

use crate::engine::{CheckpointFiles, EngineError, LanguageModel, ModelFiles, Precision, ReadSeek, Result};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| EngineError::MissingFile(format!("{} ({e})", path.display())))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match path.exists() {
        true => read(path).map(Some),
        false => Ok(None),
    }
}

/// The safetensors files of a checkpoint folder: `model.safetensors`, or the
/// shards listed in `model.safetensors.index.json`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let bytes = read(&index).map_err(|_| EngineError::MissingFile(format!("{} (or model.safetensors.index.json)", single.display())))?;
    let mut shards = crate::engine::llm::shards_from_index(&bytes)?;
    shards.sort();
    Ok(shards.into_iter().map(|f| dir.join(f)).collect())
}

/// Loads a `.gguf` file or a Hugging Face checkpoint folder.
pub fn load(path: &Path, precision: Precision) -> Result<LanguageModel> {
    if path.is_dir() {
        // Weights are read tensor by tensor from the files (never whole into memory).
        let open = |p: &std::path::PathBuf| -> Result<Box<dyn ReadSeek>> {
            let file = std::fs::File::open(p).map_err(|e| EngineError::MissingFile(format!("{} ({e})", p.display())))?;
            Ok(Box::new(std::io::BufReader::new(file)))
        };
        let files = CheckpointFiles {
            config_json: read(&path.join("config.json"))?,
            tokenizer_json: read(&path.join("tokenizer.json"))?,
            tokenizer_config_json: read_optional(&path.join("tokenizer_config.json"))?,
            generation_config_json: read_optional(&path.join("generation_config.json"))?,
            safetensors: safetensors_files(path)?.iter().map(open).collect::<Result<_>>()?,
        };
        LanguageModel::load(ModelFiles::Checkpoint(files), precision)
    } else {
        let bytes = read(path)?;
        LanguageModel::load(ModelFiles::Gguf(&bytes), precision)
    }
}

/// Writes a Hugging Face checkpoint folder (config.json, model.safetensors in
/// `dtype`, tokenizer.json, tokenizer_config.json) made from a llama GGUF file:
/// the tests' float32 reference model, the benchmark's bf16 checkpoints (the
/// official ones' form), and a way to build a mirror folder.
/// q/k rows are put back in Hugging Face's rotate-half order.
pub fn write_checkpoint_from_gguf(gguf: &[u8], dir: &Path, dtype: candle_core::DType) -> Result<()> {
    use crate::engine::config::config_from_gguf;
    use crate::engine::weights::{hf_name, permute_qk, read_gguf, RopeRows};
    use crate::engine::tokenizer::TextTokenizer;
    let io = |e: std::io::Error| EngineError::MissingFile(format!("{} ({e})", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let (ct, mut cursor) = read_gguf(gguf, "the GGUF file")?;
    let c = config_from_gguf(&ct)?;
    let mut tensors = std::collections::HashMap::new();
    for name in ct.tensor_infos.keys() {
        let Some(hf) = hf_name(name) else { continue };
        let t = ct.tensor(&mut cursor, name, &candle_core::Device::Cpu)?.dequantize(&candle_core::Device::Cpu)?;
        let t = permute_qk(name, t, (c.n_heads, c.n_kv_heads, c.head_dim()), RopeRows::ToHuggingFace)?;
        tensors.insert(hf, t.to_dtype(dtype)?);
    }
    let tied = !ct.tensor_infos.contains_key("output.weight");
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    let tokenizer = TextTokenizer::from_gguf(&ct)?;
    let token = |key: &str| ct.metadata.get(key).and_then(|v| v.to_u32().ok());
    let (bos, eos) = (token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id"));
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.context_length,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": tied,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "torch_dtype": match dtype {
            candle_core::DType::BF16 => "bfloat16",
            candle_core::DType::F16 => "float16",
            _ => "float32",
        },
    });
    let name = |id: Option<u32>| id.map(|i| tokenizer.decode(&[i], false).unwrap_or_default());
    let tokenizer_config = serde_json::json!({
        "chat_template": ct.metadata.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()),
        "bos_token": name(bos),
        "eos_token": name(eos),
        "add_bos_token": false,
        "tokenizer_class": "GPT2Tokenizer",
    });
    let write = |file: &str, text: String| std::fs::write(dir.join(file), text).map_err(io);
    write("config.json", serde_json::to_string_pretty(&config).expect("json"))?;
    write("tokenizer_config.json", serde_json::to_string_pretty(&tokenizer_config).expect("json"))?;
    write("generation_config.json", serde_json::json!({"eos_token_id": eos, "bos_token_id": bos}).to_string())?;
    write("tokenizer.json", tokenizer.to_json()?)?;
    Ok(())
}
