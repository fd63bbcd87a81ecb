//! What a model takes before it is downloaded (`engine::inspect`, the model
//! picker's numbers), on the real SmolLM2 file: the shape read from the
//! GGUF file's first bytes, and from a checkpoint's config.json, agree with
//! the loaded model.

use three_answers::engine::inspect::{checkpoint_shape, gguf_shape};
use three_answers::engine::{LanguageModel, ModelFiles, Precision};

#[path = "common/test_model.rs"]
mod test_model;

fn gguf() -> Vec<u8> {
    test_model::read_test_gguf()
}

#[test]
fn a_gguf_files_first_bytes_give_its_shape_and_its_memory_at_each_precision() {
    let bytes = gguf();
    let shape = gguf_shape(&bytes[..8 << 20], bytes.len() as u64).unwrap();
    assert_eq!(shape.context_length, 8192);
    // SmolLM2-135M: 134.5 million weights (30 layers of 576 wide, one tied embedding; norms not counted).
    assert!((134_000_000..135_000_000).contains(&shape.weights), "{}", shape.weights);
    assert!(shape.stored_bytes_per_weight > 0.5 && shape.stored_bytes_per_weight < 0.8, "Q4_1: {}", shape.stored_bytes_per_weight);
    for precision in [Precision::Auto, Precision::F32, Precision::Q8_0] {
        let loaded = LanguageModel::load(ModelFiles::Gguf(&bytes), precision).unwrap().weight_bytes() as f64;
        let estimate = shape.memory(precision);
        assert!((estimate - loaded).abs() / loaded < 0.25, "{precision:?}: estimate {estimate}, loaded {loaded}");
    }
    // Too few bytes for the header: an error, not a guess.
    assert!(gguf_shape(&bytes[..4096], bytes.len() as u64).is_err());
}

#[test]
fn a_checkpoints_config_gives_its_shape() {
    let config = br#"{"architectures":["LlamaForCausalLM"],"hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":24,
        "num_attention_heads":32,"num_key_value_heads":32,"vocab_size":49152,"max_position_embeddings":8192,"rms_norm_eps":1e-5,
        "rope_theta":130000,"tie_word_embeddings":true}"#;
    let shape = checkpoint_shape(config, 3_422_752_768).unwrap();
    assert_eq!(shape.weights, 24 * 2048 * (2 * 2048 + 2 * 2048 + 3 * 8192) + 49152 * 2048, "SmolLM2-1.7B: 1.71 billion, the embedding tied");
    assert!(shape.memory(Precision::Auto) > 3.2e9 && shape.memory(Precision::Q8_0) < 2.1e9);
    assert!(checkpoint_shape(b"{}", 10).is_err());
}
