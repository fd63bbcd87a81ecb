//! Branching from any token (`LanguageModel::start_branch`), on the real
//! SmolLM2 weights: forcing an answer's own first tokens gives that answer
//! back (greedy and sampled), and forcing another candidate gives what a
//! fresh model says after that prefix, whatever the KV cache held.

use std::sync::OnceLock;

use three_answers::engine::modes::{Prompt, DEFAULT_QUESTION};
use three_answers::engine::{LanguageModel, ModelFiles, Precision, SamplingSettings, Step, StopReason};

#[path = "common/test_model.rs"]
mod test_model;

fn gguf_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(test_model::read_test_gguf)
}

fn load(precision: Precision) -> LanguageModel {
    LanguageModel::load(ModelFiles::Gguf(gguf_bytes()), precision).unwrap()
}

fn prompt_ids(model: &LanguageModel, prompt: Prompt) -> Vec<u32> {
    model.tokenizer.encode(&prompt.text(model).unwrap()).unwrap()
}

/// An answer's ids and, per step, the top candidates' ids.
fn answer(model: &mut LanguageModel, ids: &[u32], settings: SamplingSettings) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut g = model.start_ids(ids.to_vec(), settings).unwrap();
    let mut candidates = vec![];
    while let Step::Token { candidates: c, .. } = model.next_token(&mut g).unwrap() {
        candidates.push(c.iter().map(|c| c.id).collect());
    }
    (g.generated_ids().to_vec(), candidates)
}

fn branch(model: &mut LanguageModel, ids: &[u32], forced: &[u32], settings: SamplingSettings) -> (Vec<u32>, String, Vec<String>) {
    let (mut g, texts) = model.start_branch(ids.to_vec(), forced, settings).unwrap();
    while let Step::Token { .. } = model.next_token(&mut g).unwrap() {}
    assert_eq!(&g.generated_ids()[..forced.len()], forced, "a branch starts with its forced tokens");
    (g.generated_ids().to_vec(), g.text().to_string(), texts)
}

#[test]
fn branching_with_the_picked_token_gives_the_answer_back_greedy_and_sampled() {
    let mut model = load(Precision::Stored);
    let sampled = SamplingSettings { do_sample: true, temperature: 1.0, top_p: 0.95, top_k: 50, repetition_penalty: 1.1, seed: 7, ..SamplingSettings::greedy(24) };
    for (prompt, settings) in [
        (Prompt::Instruct(DEFAULT_QUESTION.into()), SamplingSettings::greedy(30)),
        (Prompt::Raw("Once upon a time, there was a".into()), SamplingSettings::greedy(20)),
        (Prompt::Raw("Write a haiku about the sea.".into()), sampled.clone()),
        (Prompt::Instruct("Name three rivers.".into()), SamplingSettings { seed: 3, ..sampled.clone() }),
    ] {
        let ids = prompt_ids(&model, prompt.clone());
        let (original, _) = answer(&mut model, &ids, settings.clone());
        assert!(original.len() >= 3, "{prompt:?}: a short answer tests little: {original:?}");
        for k in [0, 1, original.len() / 2, original.len() - 1] {
            let (ids_b, text, texts) = branch(&mut model, &ids, &original[..=k], settings.clone());
            assert_eq!(ids_b, original, "{prompt:?}: branch at step {k} with the token picked there");
            let whole = model.tokenizer.decode(&original, true).unwrap();
            assert_eq!(text, whole, "{prompt:?}: the branch's text is the answer's");
            assert_eq!(texts.len(), k + 1);
        }
    }
}

#[test]
fn branching_with_another_candidate_equals_a_fresh_model_given_that_prefix() {
    let mut model = load(Precision::F32);
    let settings = SamplingSettings { show_candidates: 5, ..SamplingSettings::greedy(20) };
    let ids = prompt_ids(&model, Prompt::Instruct(DEFAULT_QUESTION.into()));
    let (original, candidates) = answer(&mut model, &ids, settings.clone());
    for k in [0, 2] {
        let other = candidates[k].iter().copied().find(|&c| c != original[k]).expect("a second candidate");
        let forced: Vec<u32> = original[..k].iter().copied().chain([other]).collect();
        // Warm: the cache holds the original answer, so the branch re-uses it up to step k.
        let (warm, _, _) = branch(&mut model, &ids, &forced, settings.clone());
        assert_ne!(warm, original);
        // Fresh: another model reads prompt + prefix as one prompt and goes on greedily.
        let mut fresh = load(Precision::F32);
        let prefixed: Vec<u32> = ids.iter().chain(&forced).copied().collect();
        let (rest, _) = answer(&mut fresh, &prefixed, SamplingSettings::greedy(settings.max_new_tokens - forced.len()));
        let reference: Vec<u32> = forced.iter().chain(&rest).copied().collect();
        assert_eq!(warm, reference, "branch at step {k} with candidate {other}");
    }
}

#[test]
fn a_branch_that_forces_end_of_text_ends_there_and_bad_branches_are_refused() {
    let mut model = load(Precision::Stored);
    let ids = prompt_ids(&model, Prompt::Instruct(DEFAULT_QUESTION.into()));
    let eos = model.eos_ids[0];
    let (mut g, texts) = model.start_branch(ids.clone(), &[504, eos], SamplingSettings::greedy(10)).unwrap();
    assert_eq!(texts.len(), 2);
    assert_eq!(model.next_token(&mut g).unwrap(), Step::Done(StopReason::EndOfText));
    assert_eq!(g.generated_ids(), &[504, eos]);
    for (forced, max) in [(vec![eos, 504], 10), (vec![u32::MAX], 10), (vec![1, 2, 3], 2)] {
        let e = model.start_branch(ids.clone(), &forced, SamplingSettings::greedy(max)).err().expect("refused");
        assert!(!e.to_string().is_empty());
    }
    // A refused branch leaves the model as it was.
    let (fresh, _) = answer(&mut load(Precision::Stored), &ids, SamplingSettings::greedy(5));
    assert_eq!(answer(&mut model, &ids, SamplingSettings::greedy(5)).0, fresh);
}
