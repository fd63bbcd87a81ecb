//! Bad input: each gives its own error, never a panic (model files,
//! checkpoints, tokenizers, templates, prompts longer than the context).

use super::*;

fn small_gguf(metadata: &[(&str, candle_core::quantized::gguf_file::Value)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let md: Vec<(&str, &candle_core::quantized::gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    candle_core::quantized::gguf_file::write(&mut out, &md, &[]).unwrap();
    out.into_inner()
}

#[test]
fn bad_model_files_say_what_is_wrong() {
    use candle_core::quantized::gguf_file::Value;
    let err = |r: Result<LanguageModel, EngineError>| r.err().expect("should fail");

    let e = err(LanguageModel::load(ModelFiles::Gguf(b"<html>404 Not Found</html>"), Precision::Stored));
    assert!(matches!(e, EngineError::NotGguf { .. }), "{e}");

    let e = err(LanguageModel::load(ModelFiles::Gguf(&gguf_bytes()[..gguf_bytes().len() / 2]), Precision::Stored));
    assert!(matches!(e, EngineError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    let e = err(LanguageModel::load(ModelFiles::Gguf(&gguf_bytes()[..5000]), Precision::Stored));
    assert!(matches!(e, EngineError::Corrupt { .. }), "{e}");

    let gpt2 = small_gguf(&[("general.architecture", Value::String("gpt2".into()))]);
    let e = three_answers::engine::model::Model::from_gguf(&gpt2, Precision::Stored).err().unwrap();
    assert!(matches!(e, EngineError::UnsupportedArchitecture(ref a) if a == "gpt2"), "{e}");

    let tiny_llama = small_gguf(&[
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", Value::U32(64)),
        ("llama.feed_forward_length", Value::U32(128)),
        ("llama.block_count", Value::U32(1)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.context_length", Value::U32(128)),
        ("llama.vocab_size", Value::U32(100)),
    ]);
    let e = three_answers::engine::model::Model::from_gguf(&tiny_llama, Precision::Stored).err().unwrap();
    assert!(e.to_string().contains("token_embd.weight") && e.to_string().contains("missing"), "{e}");

    let e = err(LanguageModel::load(ModelFiles::Gguf(&tiny_llama), Precision::Stored));
    assert!(matches!(e, EngineError::Tokenizer(_)), "{e}");

    // A tensor of a ggml type id candle does not know (e.g. a newer quantization).
    let t = candle_core::quantized::QTensor::quantize(
        &candle_core::Tensor::zeros((4, 32), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
        candle_core::quantized::GgmlDType::F32,
    )
    .unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    let arch = Value::String("llama".into());
    candle_core::quantized::gguf_file::write(&mut out, &[("general.architecture", &arch)], &[("token_embd.weight", &t)]).unwrap();
    let mut bytes = out.into_inner();
    // The tensor table entry: name, n_dims (u32), dims (u64 each), ggml type (u32), offset (u64).
    let name_at = bytes.windows(17).position(|w| w == b"token_embd.weight").unwrap();
    let type_at = name_at + 17 + 4 + 2 * 8;
    assert_eq!(&bytes[type_at..type_at + 4], &0u32.to_le_bytes(), "F32 is ggml type 0");
    bytes[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = err(LanguageModel::load(ModelFiles::Gguf(&bytes), Precision::Stored));
    assert!(matches!(e, EngineError::UnsupportedQuantization { .. }), "{e}");
}

#[test]
fn bad_checkpoint_files_say_what_is_wrong() {
    let src = checkpoint_dir();
    let read = |f: &str| std::fs::read(src.join(f)).unwrap();
    let (config, tokenizer, tokenizer_config) = (read("config.json"), read("tokenizer.json"), read("tokenizer_config.json"));
    let weights = read("model.safetensors");
    let load = |config: &[u8], tokenizer: &[u8], tokenizer_config: &[u8], weights: &[&[u8]]| {
        let files = three_answers::engine::CheckpointFiles {
            config_json: config.to_vec(),
            tokenizer_json: tokenizer.to_vec(),
            tokenizer_config_json: Some(tokenizer_config.to_vec()),
            generation_config_json: None,
            safetensors: weights.iter().map(|w| Box::new(std::io::Cursor::new(w.to_vec())) as Box<dyn three_answers::engine::ReadSeek>).collect(),
        };
        LanguageModel::load(ModelFiles::Checkpoint(files), Precision::Stored).err().expect("should fail")
    };
    let e = load(b"{not json", &tokenizer, &tokenizer_config, &[&weights]);
    assert!(matches!(e, EngineError::BadConfig { ref file, .. } if file == "config.json"), "{e}");

    let mut wrong: Value = serde_json::from_slice(&config).unwrap();
    wrong["intermediate_size"] = 1000.into();
    let e = load(wrong.to_string().as_bytes(), &tokenizer, &tokenizer_config, &[&weights]);
    assert!(matches!(e, EngineError::BadTensor { .. }) && e.to_string().contains("shape"), "{e}");

    let mut wrong: Value = serde_json::from_slice(&config).unwrap();
    wrong["model_type"] = "mistral".into();
    let e = load(wrong.to_string().as_bytes(), &tokenizer, &tokenizer_config, &[&weights]);
    assert!(matches!(e, EngineError::UnsupportedArchitecture(_)), "{e}");

    let e = load(&config, b"{\"oops\": 1}", &tokenizer_config, &[&weights]);
    assert!(matches!(e, EngineError::Tokenizer(_)), "{e}");

    let e = load(&config, &tokenizer, &tokenizer_config, &[]);
    assert!(matches!(e, EngineError::MissingFile(_)), "{e}");

    let e = load(&config, &tokenizer, &tokenizer_config, &[&weights[..weights.len() / 3]]);
    assert!(matches!(e, EngineError::Corrupt { .. }) && e.to_string().contains("cut short"), "{e}");

    let e = load(&config, &tokenizer, &tokenizer_config, &[b"<html>404 Not Found</html>"]);
    assert!(matches!(e, EngineError::Corrupt { .. }) && e.to_string().contains("not a safetensors file"), "{e}");

    let e = load(&config, &tokenizer, br#"{"chat_template": "{% for m in messages %}{{ m.content "}"#, &[&weights]);
    assert!(matches!(e, EngineError::Template(_)), "{e}");
}

/// A tokenizer.json's own truncation and padding are switched off (one would
/// cut prompts or panic, the other ask for 10^8 tokens); a tokenizer with more
/// tokens than the embedding has rows is refused at load.
#[test]
fn hostile_tokenizer_settings_are_neutralised_or_refused() {
    let src = checkpoint_dir();
    let read = |f: &str| std::fs::read(src.join(f)).unwrap();
    let (config, tokenizer, tokenizer_config) = (read("config.json"), read("tokenizer.json"), read("tokenizer_config.json"));
    let load = |tokenizer: &[u8]| {
        let weights = std::fs::File::open(src.join("model.safetensors")).unwrap();
        let files = three_answers::engine::CheckpointFiles {
            config_json: config.clone(),
            tokenizer_json: tokenizer.to_vec(),
            tokenizer_config_json: Some(tokenizer_config.clone()),
            generation_config_json: None,
            safetensors: vec![Box::new(weights)],
        };
        LanguageModel::load(ModelFiles::Checkpoint(files), Precision::F32)
    };
    let prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n";
    let plain = load(&tokenizer).unwrap().tokenizer.encode(prompt).unwrap();
    let mut t: Value = serde_json::from_slice(&tokenizer).unwrap();
    t["truncation"] = serde_json::json!({"direction": "Right", "max_length": 1, "strategy": "LongestFirst", "stride": 5});
    t["padding"] = serde_json::json!({"strategy": {"Fixed": 100000000u64}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
    let hostile = load(t.to_string().as_bytes()).unwrap();
    assert_eq!(hostile.tokenizer.encode(prompt).unwrap(), plain);

    let mut t: Value = serde_json::from_slice(&tokenizer).unwrap();
    let added = t["added_tokens"].as_array_mut().unwrap();
    for i in 0..20u32 {
        added.push(serde_json::json!({"id": 49152 + i, "content": format!("<extra_{i}>"), "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}));
    }
    let e = load(t.to_string().as_bytes()).err().expect("more tokens than embedding rows");
    assert!(e.to_string().contains("embedding has 49152 rows"), "{e}");
}

#[test]
fn templates_may_use_loop_controls_like_transformers() {
    // transformers renders chat templates with Jinja's loopcontrols extension.
    let t = ChatTemplate::new("{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }}{% if loop.index > 2 %}{% break %}{% endif %};{% endfor %}", "", "").unwrap();
    let msgs = [Message::system("s"), Message::user("a"), Message::assistant("b"), Message::user("c")];
    assert_eq!(t.render(&msgs, false).unwrap(), "a;b");
}

#[test]
fn templates_are_bounded_and_their_errors_are_clear() {
    let raise = ChatTemplate::new("{{ raise_exception('Conversation roles must alternate') }}", "", "").unwrap();
    let e = raise.render(&[Message::user("hi")], true).unwrap_err();
    assert!(e.to_string().contains("roles must alternate"), "{e}");

    let forever = ChatTemplate::new("{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}", "", "").unwrap();
    let e = forever.render(&[], true).unwrap_err();
    assert!(matches!(e, EngineError::Template(_)) && e.to_string().contains("fuel"), "{e}");

    // Work that fuel does not see: one instruction that would build gigabytes.
    for hostile in [
        "{{ ([0] * 4000000000) | join }}",
        "{{ ([0] * 4000000000) | join(', ') }}",
        "{% for i in range(100) %}{{ 'x' * 50000000 }}{% endfor %}",
        // Filters and Python methods that walk or build everything at once.
        "{{ ([0] * 4000000000) | list | length }}",
        "{{ ([0] * 4000000000) | sort }}",
        "{{ ([0] * 4000000000) | sum }}",
        "{{ ([0] * 4000000000) | last }}",
        "{{ ([0] * 4000000000) | map('string') | first }}",
        "{{ [1, 2] | batch(4000000000) }}",
        "{{ [0] | slice(4000000000) }}",
        "{{ 'x' | indent(4000000000) }}",
        "{{ ('x' * 1000000) | replace('x', 'x' * 1000000) }}",
        "{{ ('x' * 1000000).replace('x', 'x' * 1000000) }}",
        "{{ ([0] * 4000000000) | dictsort }}",
        // Each call small, all together minutes: the walk budget of one render.
        "{% for i in range(100000) %}{{ ([0] * 100000) | sum }}{% endfor %}",
        "{% for i in range(100000) %}{{ ('x' * 100000).strip() }}{% endfor %}",
    ] {
        let t = ChatTemplate::new(hostile, "", "").unwrap();
        let e = t.render(&[Message::user("hi")], true).unwrap_err();
        assert!(matches!(e, EngineError::Template(_)) && ["too long", "more than", "too much"].iter().any(|w| e.to_string().contains(w)), "{hostile}: {e}");
    }
    // The guarded filters still do their work on real sizes.
    let t = ChatTemplate::new("{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ (messages | last).content | replace('b', 'B') }} {{ [3, 1, 2] | sort | join(',') }}", "", "").unwrap();
    assert_eq!(t.render(&[Message::user("a"), Message::assistant("b")], false).unwrap(), "1 B 1,2,3");
    let joined = ChatTemplate::new("{{ messages | map(attribute='content') | join('|') }}", "", "").unwrap();
    assert_eq!(joined.render(&[Message::user("a"), Message::assistant("b")], false).unwrap(), "a|b");

    // Hub templates use Python methods and a list of named templates.
    let cfg = serde_json::json!({
        "bos_token": "<s>",
        "eos_token": {"content": "</s>"},
        "chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m['role'].upper() }}] {{ m['content'].strip() }}{{ eos_token }}{% endfor %}"}
        ]
    });
    let t = ChatTemplate::from_tokenizer_config(cfg.to_string().as_bytes()).unwrap().unwrap();
    assert_eq!(t.render(&[Message::user("  hello  ")], false).unwrap(), "<s>[USER] hello</s>");
    assert!(ChatTemplate::from_tokenizer_config(b"{}").unwrap().is_none());
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_and_the_model_still_works() {
    let mut model = load_gguf(Precision::Stored);
    let long = "Paris ".repeat(model.config().context_length + 10);
    let e = model.start(&long, SamplingSettings::greedy(5)).err().unwrap();
    assert!(matches!(e, EngineError::PromptTooLong { context: 8192, .. }), "{e}");
    assert!(e.to_string().contains("8192"));
    let e = model.start("", SamplingSettings::greedy(5)).err().unwrap();
    assert!(matches!(e, EngineError::EmptyPrompt));
    let e = model.start("hi", SamplingSettings { max_new_tokens: 0, ..SamplingSettings::default() }).err().unwrap();
    assert!(matches!(e, EngineError::Settings(_)));
    let g = model.generate("<|im_start|>user\nWhat is the capital of Germany?<|im_end|>\n<|im_start|>assistant\n", SamplingSettings::greedy(8)).unwrap();
    assert!(g.text().contains("Berlin"), "{}", g.text());
}

#[test]
fn precision_names_parse() {
    for p in Precision::ALL {
        assert_eq!(Precision::from_name(&p.name().to_uppercase()), Some(p));
    }
    assert_eq!(Precision::from_name("q2"), None);
}
