//! One prompt, one answer (any batch, any cache re-use), the chat's cache,
//! streaming, the page's explanations (candidates, the end-of-text meter,
//! scores), sampling, limits and precisions.

use super::*;

/// One prompt, one answer: at every precision the logits of every position
/// are the same bits whether the prompt is read in one batch, token by token,
/// or in pieces that re-use the cache (tile-size cuts and random ones).
#[test]
fn logits_are_the_same_in_any_batch_at_every_precision() {
    use three_answers::engine::model::Model;
    let tokenizer = load_gguf(Precision::F32).tokenizer;
    let mut rng = kernel_checks::Lcg(23);
    let templated = tokenizer.encode("<|im_start|>user\nWho wrote Hamlet?<|im_end|>\n<|im_start|>assistant\n").unwrap();
    let random: Vec<u32> = (0..21).map(|_| ((rng.next() + 1.0) * 24000.0) as u32).collect();
    for precision in Precision::ALL {
        let mut model = Model::from_gguf(gguf_bytes(), precision).unwrap();
        kernel_checks::model_logits_are_the_same_in_any_batch(&mut model, &templated, precision.name(), 1);
        kernel_checks::model_logits_are_the_same_in_any_batch(&mut model, &random, precision.name(), 2);
    }
    // The official checkpoints' form: bf16 weights, kept 16-bit by default.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smollm2-bf16-batch-invariance");
    if !dir.join("model.safetensors").exists() {
        local_files::write_checkpoint_from_gguf(gguf_bytes(), &dir, candle_core::DType::BF16).unwrap();
    }
    let config = std::fs::read(dir.join("config.json")).unwrap();
    let mut file = std::fs::File::open(dir.join("model.safetensors")).unwrap();
    let mut model = Model::from_safetensors(&config, vec![&mut file], Precision::Auto).unwrap();
    kernel_checks::model_logits_are_the_same_in_any_batch(&mut model, &templated, "bf16 checkpoint", 3);
}

#[test]
fn chat_turn_two_reuses_the_kv_cache_and_equals_a_fresh_run() {
    // f32, and the default precision (Q8_0 kernels) where the cache's pieces once changed answers.
    for precision in [Precision::F32, Precision::Auto] {
        chat_turn_two_equals_a_fresh_run(precision);
    }
}

fn chat_turn_two_equals_a_fresh_run(precision: Precision) {
    let mut model = load_gguf(precision);
    let mut chat = Conversation::new(Some("You are a concise geography tutor.".into()));
    chat.turns.push(Message::user("What is the capital of Italy?"));
    let g1 = model.generate(&chat.prompt(&model).unwrap(), SamplingSettings::greedy(30)).unwrap();
    chat.turns.push(Message::assistant(&model.tokenizer.decode(g1.generated_ids(), true).unwrap()));
    chat.turns.push(Message::user(modes::DEFAULT_FOLLOW_UP));
    let prompt = chat.prompt(&model).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\nYou are a concise geography tutor.<|im_end|>"));
    let reused = model.generate(&prompt, SamplingSettings::greedy(40)).unwrap();
    let first_turn_len = g1.timings().prompt_tokens;
    assert!(reused.timings().reused_tokens >= first_turn_len, "re-used {} of {}", reused.timings().reused_tokens, first_turn_len);
    model.reset();
    let fresh = model.generate(&prompt, SamplingSettings::greedy(40)).unwrap();
    assert_eq!(fresh.timings().reused_tokens, 0);
    assert_eq!(reused.generated_ids(), fresh.generated_ids());
    // Another mode on the same model after a chat: the cache is cut back, not mixed in.
    let raw = model.generate(modes::DEFAULT_QUESTION, SamplingSettings::greedy(5)).unwrap();
    model.reset();
    let raw_fresh = model.generate(modes::DEFAULT_QUESTION, SamplingSettings::greedy(5)).unwrap();
    assert_eq!(raw.generated_ids(), raw_fresh.generated_ids());
}

#[test]
fn warm_up_leaves_no_trace_and_names_the_weight_kinds() {
    let mut model = load_gguf(Precision::Auto);
    // Auto re-quantizes this file's Q4_1 blocks to Q8_0: the warm-up runs Q8_0 kernels.
    let kinds = model.weight_kinds();
    assert!(kinds.contains("Q8_0") && !kinds.contains("Q4_1"), "{kinds:?}");
    assert_eq!(load_gguf(Precision::F32).weight_kinds(), ["F32".to_string()].into());
    // A prompt that starts like the warm-up's own tokens (0, 1, ...): a
    // warm-up that stayed in the KV cache would be re-used for it.
    let ids = |m: &mut LanguageModel| {
        let mut g = m.start_ids((0..12).collect(), SamplingSettings::greedy(8)).unwrap();
        while let Step::Token { .. } = m.next_token(&mut g).unwrap() {}
        g
    };
    let before = ids(&mut model);
    model.warm_up().unwrap();
    let after = ids(&mut model);
    assert_eq!(after.timings().reused_tokens, 0, "the warm-up's tokens must not stay in the KV cache");
    assert_eq!(after.generated_ids(), before.generated_ids());
    let again = ids(&mut model);
    assert!(again.timings().reused_tokens > 0, "the probe itself is re-used: the check above can fail");
}

#[test]
fn streamed_text_is_whole_characters_and_equals_the_full_decode() {
    let mut model = load_gguf(Precision::Stored);
    let mut g = model
        .start("Café au lait costs 3€ in Zürich, and a croissant costs", SamplingSettings { ignore_eos: true, ..SamplingSettings::greedy(40) })
        .unwrap();
    let mut streamed = String::new();
    while let Step::Token { text, .. } = model.next_token(&mut g).unwrap() {
        assert!(!text.contains('\u{FFFD}'), "broken character in chunk {text:?}");
        streamed.push_str(&text);
    }
    assert_eq!(g.stop_reason(), Some(StopReason::MaxNewTokens));
    assert_eq!(streamed, model.tokenizer.decode(g.generated_ids(), true).unwrap());
    assert_eq!(streamed, g.text());
    // And a multi-byte character split over tokens comes out whole.
    let ids = model.tokenizer.encode("日本語 🚀 Zürich").unwrap();
    let mut stream = model.tokenizer.stream();
    let text: String = ids.iter().map(|&id| stream.step(&model.tokenizer, id).unwrap()).collect();
    assert_eq!(text, "日本語 🚀 Zürich");
}

#[test]
fn candidates_explain_the_first_step_with_probabilities() {
    let mut model = load_gguf(Precision::F32);
    let reference = fixture("transformers-f32-reference.json");
    let c = case(&reference, "a_foundation_raw_eos_banned");
    let settings = SamplingSettings { show_candidates: 5, ..settings_for(c) };
    let mut g = model.start(modes::DEFAULT_QUESTION, settings).unwrap();
    let Step::Token { id, candidates, .. } = model.next_token(&mut g).unwrap() else { panic!("no token") };
    // EOS is banned in this case: the candidates are what the sampler chose from.
    let want: Vec<u32> = c["first_step_top5"].as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap() as u32).collect();
    let got: Vec<u32> = candidates.iter().map(|c| c.id).collect();
    assert_eq!(got, want);
    assert_eq!(id, 198);
    for (cand, t) in candidates.iter().zip(c["first_step_top5"].as_array().unwrap()) {
        assert!((cand.logit - t["logit"].as_f64().unwrap() as f32).abs() < 0.01);
    }
    assert!(candidates.windows(2).all(|w| w[0].prob >= w[1].prob));
    let total: f32 = candidates.iter().map(|c| c.prob).sum();
    assert!(total > 0.5 && total <= 1.0001, "{total}");
    assert_eq!(candidates[0].text, "\n");
}

#[test]
fn end_of_text_meter_is_the_softmax_mass_of_the_stop_tokens_at_every_step() {
    use three_answers::engine::model::Model;
    let mut model = load_gguf(Precision::F32);
    let prompt = model.tokenizer.encode(&Prompt::Instruct(modes::DEFAULT_QUESTION.into()).text(&model).unwrap()).unwrap();
    let g = {
        let mut g = model.start_ids(prompt.clone(), SamplingSettings::greedy(30)).unwrap();
        while let Step::Token { .. } = model.next_token(&mut g).unwrap() {}
        g
    };
    assert_eq!(g.stop_reason(), Some(StopReason::EndOfText));
    let generated = g.generated_ids().to_vec();
    assert_eq!(g.end_probs().len(), generated.len(), "one value per step, the stopping step included");
    // Independently: a second model reads prompt + answer in one batch; each
    // row's softmax (f64) gives P(stop) for the step that followed it.
    let mut fresh = Model::from_gguf(gguf_bytes(), Precision::F32).unwrap();
    let all: Vec<u32> = prompt.iter().chain(&generated[..generated.len() - 1]).copied().collect();
    let logits = fresh.forward_all(&all).unwrap();
    let vocab = logits.len() / all.len();
    for (step, &got) in g.end_probs().iter().enumerate() {
        let row = &logits[(prompt.len() - 1 + step) * vocab..][..vocab];
        let max = row.iter().copied().fold(f64::NEG_INFINITY, |m, l| m.max(f64::from(l)));
        let total: f64 = row.iter().map(|&l| (f64::from(l) - max).exp()).sum();
        let want: f64 = model.eos_ids.iter().map(|&e| (f64::from(row[e as usize]) - max).exp()).sum::<f64>() / total;
        assert!((f64::from(got) - want).abs() <= 1e-5 + want * 1e-4, "step {step}: {got} vs {want}");
    }
    let last = *g.end_probs().last().unwrap();
    assert!(last > 0.5, "the instruct model is sure it is done: {last}");
    assert!(g.end_probs()[..generated.len() - 1].iter().all(|&p| p < last), "and was less sure before");
}

#[test]
fn scoring_an_answer_in_one_batch_equals_feeding_it_token_by_token() {
    use three_answers::engine::model::Model;
    let mut model = load_gguf(Precision::F32);
    let prompt = model.tokenizer.encode(&Prompt::Instruct(modes::DEFAULT_QUESTION.into()).text(&model).unwrap()).unwrap();
    let mut g = model.start_ids(prompt.clone(), SamplingSettings::greedy(30)).unwrap();
    while let Step::Token { .. } = model.next_token(&mut g).unwrap() {}
    let greedy = g.generated_ids().to_vec();
    // The same answer with its second token swapped for a less likely one.
    let mut other = greedy.clone();
    other[1] = 1234;
    for answer in [greedy.clone(), other] {
        let scores = model.score(&prompt, &answer).unwrap();
        assert_eq!(scores.len(), answer.len());
        let mut fresh = Model::from_gguf(gguf_bytes(), Precision::F32).unwrap();
        let mut row = fresh.forward(&prompt).unwrap();
        for (i, (&id, s)) in answer.iter().zip(&scores).enumerate() {
            let rank = 1 + row.iter().filter(|&&l| l > row[id as usize]).count() as u32;
            let max = row.iter().copied().fold(f64::NEG_INFINITY, |m, l| m.max(f64::from(l)));
            let prob = (f64::from(row[id as usize]) - max).exp() / row.iter().map(|&l| (f64::from(l) - max).exp()).sum::<f64>();
            assert_eq!((s.id, s.rank), (id, rank), "token {i}");
            assert!((f64::from(s.prob) - prob).abs() <= 1e-6 + prob * 1e-5, "token {i}: {} vs {prob}", s.prob);
            row = fresh.forward(&[id]).unwrap();
        }
        if answer == greedy {
            assert!(scores.iter().all(|s| s.rank == 1), "the weights that wrote it greedily rank every token first");
        } else {
            assert!(scores[1].rank > 1, "the swapped token is not this model's pick");
        }
    }
}

#[test]
fn sampling_is_reproducible_by_seed() {
    let mut model = load_gguf(Precision::Stored);
    let sample = |model: &mut LanguageModel, seed| {
        let s = SamplingSettings { do_sample: true, temperature: 1.0, top_p: 0.95, top_k: 50, repetition_penalty: 1.1, seed, ..SamplingSettings::greedy(12) };
        model.generate("Write a haiku about the sea.", s).unwrap().generated_ids().to_vec()
    };
    let a = sample(&mut model, 1);
    assert_eq!(a, sample(&mut model, 1));
    let others: Vec<Vec<u32>> = (2..6).map(|seed| sample(&mut model, seed)).collect();
    assert!(others.iter().any(|o| *o != a), "five seeds gave the same text");
}

#[test]
fn max_new_tokens_and_end_of_text_are_reported() {
    let mut model = load_gguf(Precision::F32);
    let g = model.generate(modes::DEFAULT_QUESTION, SamplingSettings { show_candidates: 3, ..SamplingSettings::greedy(30) }).unwrap();
    assert_eq!(g.stop_reason(), Some(StopReason::EndOfText));
    assert_eq!(g.text(), "");
    // Why it ended at once: <|im_end|> was the most likely token, "\n" next.
    let why: Vec<u32> = g.end_candidates().iter().map(|c| c.id).collect();
    assert_eq!(why, vec![2, 198, 378]);
    let g = model.generate("Once upon a time", SamplingSettings { ignore_eos: true, ..SamplingSettings::greedy(3) }).unwrap();
    assert_eq!(g.stop_reason(), Some(StopReason::MaxNewTokens));
    assert_eq!(g.generated_ids().len(), 3);
}

#[test]
fn precision_changes_what_the_weights_take_in_memory() {
    let bytes = |p| load_gguf(p).weight_bytes();
    let (stored, f32_, f16_, q8) = (bytes(Precision::Stored), bytes(Precision::F32), bytes(Precision::F16), bytes(Precision::Q8_0));
    assert!(f32_ > 500_000_000, "{f32_}");
    assert!((f16_ as f64 / f32_ as f64 - 0.5).abs() < 0.01, "f16 {f16_} vs f32 {f32_}");
    assert!(q8 < f16_ && stored < q8, "stored {stored} q8 {q8}");
    // Q8_0 still answers sensibly on a case with a wide margin.
    let mut m = load_gguf(Precision::Q8_0);
    let g = m.generate("<|im_start|>user\nWhat is the capital of Germany?<|im_end|>\n<|im_start|>assistant\n", SamplingSettings::greedy(10)).unwrap();
    assert!(g.text().contains("Berlin"), "{}", g.text());
}

#[test]
fn sharded_bf16_checkpoint_loads_like_the_single_file() {
    // The official checkpoints are bf16; big ones come in shards with an index.
    let src = checkpoint_dir();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smollm2-bf16-sharded");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let mut shards = [std::collections::HashMap::new(), std::collections::HashMap::new()];
    let mut weight_map = serde_json::Map::new();
    for (name, t) in tensors {
        let i = usize::from(name.contains("layers.1"));
        weight_map.insert(name.clone(), format!("model-0000{}-of-00002.safetensors", i + 1).into());
        shards[i].insert(name, t.to_dtype(candle_core::DType::BF16).unwrap());
    }
    for (i, shard) in shards.iter().enumerate() {
        candle_core::safetensors::save(shard, dir.join(format!("model-0000{}-of-00002.safetensors", i + 1))).unwrap();
    }
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({ "weight_map": weight_map }).to_string()).unwrap();

    let mut bf16 = local_files::load(&dir, Precision::F32).unwrap();
    // Auto keeps bf16 as bf16 (widened exactly in the half kernel): half the
    // bytes of f32, and the same greedy ids as the same weights widened at load.
    let mut auto = local_files::load(&dir, Precision::Auto).unwrap();
    assert!((auto.weight_bytes() as f64 / bf16.weight_bytes() as f64 - 0.5).abs() < 0.01, "auto {} vs f32 {}", auto.weight_bytes(), bf16.weight_bytes());
    for case in ["<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", "What is the capital of France?"] {
        let s = SamplingSettings { ignore_eos: true, ..SamplingSettings::greedy(24) };
        let (a, b) = (auto.generate(case, s.clone()).unwrap(), bf16.generate(case, s).unwrap());
        assert_eq!(a.generated_ids(), b.generated_ids(), "{case:?}");
    }
    let mut f32_ = local_files::load(src, Precision::F32).unwrap();
    let s = SamplingSettings { show_candidates: 5, ..SamplingSettings::greedy(1) };
    let prompt = "<|im_start|>user\nWhat is the capital of Germany?<|im_end|>\n<|im_start|>assistant\n";
    let top = |m: &mut LanguageModel| {
        let mut g = m.start(prompt, s.clone()).unwrap();
        match m.next_token(&mut g).unwrap() {
            Step::Token { candidates, .. } => candidates,
            Step::Done(_) => panic!("ended at once"),
        }
    };
    let (a, b) = (top(&mut bf16), top(&mut f32_));
    assert_eq!(a[0].id, b[0].id);
    for (x, y) in a.iter().zip(&b) {
        assert!((x.logit - y.logit).abs() < 0.5, "bf16 {} vs f32 {}", x.logit, y.logit);
    }
}
