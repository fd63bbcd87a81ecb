//! Hostile model files (issue 11): each damaged file ends in an `EngineError`
//! that says what is wrong, before anything big is allocated, never a panic,
//! an abort or a stuck answer. Files are a tiny random llama written here
//! (tests/common/kernel_checks.rs), patched byte by byte, and the checkpoint
//! files of the real test model where a tokenizer is needed.

#[path = "common/kernel_checks.rs"]
#[allow(dead_code)]
mod checks;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use three_answers::engine::file_checks::MAX_CONTEXT;
use three_answers::engine::model::Model;
use three_answers::engine::{EngineError, Precision};

fn tiny() -> Vec<u8> {
    checks::tiny_llama_gguf(GgmlDType::F32)
}

/// The tiny model with its metadata changed: `set` is applied to the parsed
/// header, and the file written again (tensors as they were).
fn tiny_with(set: impl Fn(&mut Vec<(String, Value)>)) -> Vec<u8> {
    let bytes = tiny();
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let content = gguf_file::Content::read(&mut cursor).unwrap();
    let mut md: Vec<(String, Value)> = content.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    set(&mut md);
    let tensors: Vec<(String, QTensor)> = content.tensor_infos.keys().map(|n| (n.clone(), content.tensor(&mut cursor, n, &candle_core::Device::Cpu).unwrap())).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &md_refs, &t_refs).unwrap();
    out.into_inner()
}

fn set(md: &mut Vec<(String, Value)>, key: &str, value: Value) {
    md.retain(|(k, _)| k != key);
    md.push((key.into(), value));
}

fn load_err(bytes: &[u8]) -> String {
    match Model::from_gguf(bytes, Precision::Auto) {
        Ok(_) => panic!("a hostile file loaded"),
        Err(e) => e.to_string(),
    }
}

/// Where a tensor's table entry is: (offset of n_dims, n_dims).
fn table_entry(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len()
}

#[test]
fn the_tiny_model_itself_loads_and_answers() {
    let mut model = Model::from_gguf(&tiny(), Precision::Auto).unwrap();
    assert_eq!(model.forward(&[1, 2, 3]).unwrap().len(), 96);
}

#[test]
fn an_alignment_of_zero_or_not_a_power_of_two_is_refused() {
    for v in [Value::U32(0), Value::U32(3), Value::U8(0), Value::I32(-4)] {
        let bytes = tiny_with(|md| set(md, "general.alignment", v.clone()));
        let e = load_err(&bytes);
        assert!(e.contains("alignment"), "{v:?}: {e}");
    }
    // A power of two other than the default is read (the tensors then sit elsewhere: said in words).
    let bytes = tiny_with(|md| set(md, "general.alignment", Value::U32(64)));
    let _ = Model::from_gguf(&bytes, Precision::Auto).map(|_| ()).map_err(|e| e.to_string());
}

#[test]
fn zero_or_overflowing_dimensions_are_refused() {
    let bytes = tiny();
    let at = table_entry(&bytes, "token_embd.weight");
    for dims in [[0u64, 96], [1 << 62, 1 << 4], [u64::MAX, 2]] {
        let mut b = bytes.clone();
        b[at + 4..at + 12].copy_from_slice(&dims[0].to_le_bytes());
        b[at + 12..at + 20].copy_from_slice(&dims[1].to_le_bytes());
        let e = load_err(&b);
        assert!(e.contains("token_embd.weight"), "{dims:?}: {e}");
    }
}

#[test]
fn tensors_that_share_bytes_are_refused() {
    let mut bytes = tiny();
    // Every tensor's offset to 0: a small file that asks for many times its size.
    for name in ["blk.0.ffn_up.weight", "blk.1.ffn_up.weight", "blk.0.ffn_gate.weight"] {
        let at = table_entry(&bytes, name);
        let offset_at = at + 4 + 2 * 8 + 4;
        bytes[offset_at..offset_at + 8].copy_from_slice(&0u64.to_le_bytes());
    }
    let e = load_err(&bytes);
    assert!(e.contains("share bytes"), "{e}");
}

#[test]
fn a_huge_layer_count_or_model_is_refused_before_allocating() {
    let e = load_err(&tiny_with(|md| set(md, "llama.block_count", Value::U32(4_000_000_000))));
    assert!(e.contains("layers"), "{e}");
    let e = load_err(&tiny_with(|md| set(md, "llama.block_count", Value::U32(3))));
    assert!(e.contains("blk.2.attn_q.weight") && e.contains("missing"), "{e}");
    // 2^20 wide with 2^22 hidden units: far beyond what a tab holds, said in GB.
    let e = load_err(&tiny_with(|md| {
        set(md, "llama.embedding_length", Value::U32(1 << 20));
        set(md, "llama.feed_forward_length", Value::U32(1 << 22));
    }));
    assert!(e.contains("GB") && e.contains("browser tab"), "{e}");
}

#[test]
fn a_huge_context_is_capped_not_allocated() {
    let mut model = Model::from_gguf(&tiny_with(|md| set(md, "llama.context_length", Value::U32(1 << 30))), Precision::Auto).unwrap();
    assert_eq!(model.config.context_length, MAX_CONTEXT);
    assert!(model.forward(&[1, 2]).is_ok());
}

#[test]
fn non_finite_settings_are_refused_at_load() {
    for (key, v) in [
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(0.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(-1.0)),
        ("llama.rope.freq_base", Value::F32(f32::NAN)),
        ("llama.rope.freq_base", Value::F32(f32::INFINITY)),
    ] {
        let e = load_err(&tiny_with(|md| set(md, key, v.clone())));
        assert!(e.contains("must be a positive number"), "{key} {v:?}: {e}");
    }
}

#[test]
fn infinite_weights_end_the_answer_with_an_error_not_a_stuck_one() {
    let bytes = tiny();
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let content = gguf_file::Content::read(&mut cursor).unwrap();
    let info = &content.tensor_infos["output_norm.weight"];
    let at = (content.tensor_data_offset + info.offset) as usize;
    let mut b = bytes.clone();
    b[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let mut model = Model::from_gguf(&b, Precision::Auto).unwrap();
    let e = model.forward(&[1, 2, 3]).unwrap_err();
    assert!(matches!(e, EngineError::Settings(_)) && e.to_string().contains("not a number"), "{e}");
    // The cache is as before: the model still runs a clean prompt after.
    assert_eq!(model.cached_len(), 0);
}

#[test]
fn a_token_id_outside_the_embedding_is_an_error() {
    let mut model = Model::from_gguf(&tiny(), Precision::Auto).unwrap();
    let e = model.forward(&[1, 96]).unwrap_err();
    assert!(e.to_string().contains("outside the model's vocabulary"), "{e}");
    assert_eq!(model.cached_len(), 0);
}

#[test]
fn shard_names_must_stay_in_the_model_folder() {
    use three_answers::engine::llm::shards_from_index;
    for bad in ["../secret.safetensors", "/etc/passwd", "sub\\\\x.safetensors", "a/b.safetensors", ""] {
        let index = format!(r#"{{"weight_map": {{"model.embed_tokens.weight": "{bad}"}}}}"#);
        let e = shards_from_index(index.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("not a plain file name"), "{bad}: {e}");
    }
    let ok = shards_from_index(br#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#).unwrap();
    assert_eq!(ok, ["model-00001-of-00002.safetensors"]);
}
