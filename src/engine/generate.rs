//! Step 4 of the flow: logits -> the next token, one step at a time.
//!
//! Sampling is candle's `LogitsProcessor` (greedy = `ArgMax`); the repetition
//! penalty is candle's `apply_repeat_penalty`. What is added here: the state of
//! one answer ([`Generation`]) so a caller such as the web worker can ask for
//! one token, yield, and come back, plus stop rules, candidates and timings.

use candle_core::Tensor;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::kernels;
use super::tokenizer::DecodeStream;

/// How to pick tokens (the tutorial's `do_sample=False` is the default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingSettings {
    pub max_new_tokens: usize,
    /// false: greedy (always the most likely token).
    pub do_sample: bool,
    pub temperature: f64,
    /// Nucleus sampling; 1.0 = off.
    pub top_p: f64,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off. Applied over the prompt and the answer, as transformers does.
    pub repetition_penalty: f32,
    pub seed: u64,
    /// How many top candidates to report per step (0 = none).
    pub show_candidates: usize,
    /// Keep going past end-of-text (benchmarks).
    pub ignore_eos: bool,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 30,
            do_sample: false,
            temperature: 0.7,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: 42,
            show_candidates: 0,
            ignore_eos: false,
        }
    }
}

impl SamplingSettings {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self { max_new_tokens, ..Self::default() }
    }

    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::Settings(m.into()));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1");
        }
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature must be above 0 when sampling");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad("repetition_penalty must be above 0");
        }
        Ok(())
    }

    fn processor(&self) -> LogitsProcessor {
        let temperature = self.temperature;
        let sampling = match (self.do_sample, self.top_k, self.top_p < 1.0) {
            (false, _, _) => Sampling::ArgMax,
            (true, 0, false) => Sampling::All { temperature },
            (true, k, false) => Sampling::TopK { k, temperature },
            (true, 0, true) => Sampling::TopP { p: self.top_p, temperature },
            (true, k, true) => Sampling::TopKThenTopP { k, p: self.top_p, temperature },
        };
        LogitsProcessor::from_sampling(self.seed, sampling)
    }
}

/// A token the model considered at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: u32,
    pub text: String,
    pub logit: f32,
    /// Softmax probability (temperature 1, after the repetition penalty and any ban).
    pub prob: f32,
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model chose an end-of-text / end-of-turn token.
    EndOfText,
    /// `max_new_tokens` were generated.
    MaxNewTokens,
}

/// What one call to `next_token` produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Token {
        id: u32,
        /// New text this token completes (may be empty mid-character).
        text: String,
        candidates: Vec<Candidate>,
        /// P(end of text) at this step (see [`Generation::end_probs`]).
        end_prob: f32,
    },
    Done(StopReason),
}

/// Prefill and decode speed of one answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache was re-used instead of recomputed.
    pub reused_tokens: usize,
    pub prefill_ms: f64,
    pub generated_tokens: usize,
    pub decode_ms: f64,
}

impl Timings {
    pub fn prefill_tok_per_s(&self) -> f64 {
        per_second(self.prompt_tokens - self.reused_tokens, self.prefill_ms)
    }
    /// Decode speed over the tokens after the first (the first comes from the prefill).
    pub fn decode_tok_per_s(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.decode_ms)
    }
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// The state of one answer being generated. Created by `LanguageModel::start`,
/// advanced by `LanguageModel::next_token`.
pub struct Generation {
    pub(crate) settings: SamplingSettings,
    processor: LogitsProcessor,
    /// Prompt + generated ids (the repetition penalty's context).
    pub(crate) context: Vec<u32>,
    pub(crate) prompt_len: usize,
    /// Logits for the next pick, when already computed (after prefill).
    pub(crate) pending_logits: Option<Tensor>,
    /// Last picked id, not yet run through the model.
    pub(crate) unfed: Option<u32>,
    pub(crate) decode: DecodeStream,
    pub(crate) eos_ids: Vec<u32>,
    pub(crate) stopped: Option<StopReason>,
    pub(crate) timings: Timings,
    pub(crate) text: String,
    /// Candidates of the step that picked end-of-text (the step `Step::Done` reports).
    pub(crate) end_candidates: Vec<Candidate>,
    /// P(end of text) at every step so far.
    pub(crate) end_probs: Vec<f32>,
}

impl Generation {
    pub(crate) fn new(settings: SamplingSettings, prompt: Vec<u32>, eos_ids: Vec<u32>) -> Result<Self> {
        settings.check()?;
        let prompt_len = prompt.len();
        Ok(Self {
            processor: settings.processor(),
            settings,
            context: prompt,
            prompt_len,
            pending_logits: None,
            unfed: None,
            decode: DecodeStream::default(),
            eos_ids,
            stopped: None,
            timings: Timings::default(),
            text: String::new(),
            end_candidates: vec![],
            end_probs: vec![],
        })
    }

    /// The ids generated so far (an end-of-text id included if it was picked).
    pub fn generated_ids(&self) -> &[u32] {
        &self.context[self.prompt_len..]
    }

    /// The answer's text so far (special tokens not shown).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// What the model weighed when it chose to end (empty unless it ended by
    /// end-of-text and candidates were asked for): why an answer ended at once.
    pub fn end_candidates(&self) -> &[Candidate] {
        &self.end_candidates
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stopped
    }

    /// At each step (the one that picked end-of-text included), the
    /// probability the model gave to ending there: the softmax mass of all
    /// its stop tokens, over the logits the candidates are shown from
    /// (temperature 1, after the repetition penalty and any ban). Why a
    /// foundation model rambles and an instruct model stops, step by step.
    pub fn end_probs(&self) -> &[f32] {
        &self.end_probs
    }

    /// Takes `id` as the next token without picking it (a branch's forced
    /// tokens; the id is already in `context`). A sampler still draws once,
    /// as its pick would have, so the random stream after the forced tokens
    /// is the one the answer they came from had: forcing an answer's own
    /// first tokens gives that answer back, sampled or not. Every sampling
    /// mode of candle's `LogitsProcessor` draws one number a pick whatever
    /// the logits (a multinomial over what is left), so a one-entry row
    /// draws it without a softmax over the vocabulary (`tests/branch.rs`
    /// checks it).
    pub(crate) fn skip_pick(&mut self) -> Result<()> {
        if self.settings.do_sample {
            self.processor.sample(&Tensor::new(&[0f32], &candle_core::Device::Cpu)?)?;
        }
        Ok(())
    }

    /// Picks the next id from `logits` and returns it with the top candidates.
    pub(crate) fn pick(&mut self, logits: &Tensor, piece: impl Fn(u32) -> String) -> Result<(u32, Vec<Candidate>)> {
        let logits = match self.settings.repetition_penalty {
            p if p == 1.0 => logits.clone(),
            p => candle_transformers::utils::apply_repeat_penalty(logits, p, &self.context)?,
        };
        let mut values = logits.to_vec1::<f32>()?;
        let logits = match self.settings.ignore_eos {
            false => logits,
            true => {
                for &e in &self.eos_ids {
                    if let Some(l) = values.get_mut(e as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
                Tensor::from_vec(values.clone(), logits.shape(), logits.device())?
            }
        };
        // One softmax a step serves the meter and the candidates.
        let softmax = Softmax::of(&values);
        self.end_probs.push(softmax.mass(&values, &self.eos_ids));
        let candidates = match self.settings.show_candidates {
            0 => vec![],
            k => top_candidates(&values, &softmax, k, piece),
        };
        let id = self.processor.sample(&logits)?;
        Ok((id, candidates))
    }
}

/// A softmax's shift and normalizer over one row of logits. Written out
/// rather than taken from candle's softmax: only a handful of entries are
/// needed, and this keeps one summation order (f64) on every machine. The
/// exponentials are `kernels`' (the same bits everywhere, four at a time in
/// the browser: one per vocabulary entry per step).
pub struct Softmax {
    max: f32,
    sum: f64,
}

impl Softmax {
    pub fn of(logits: &[f32]) -> Self {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum = if max.is_finite() {
            let mut e: Vec<f32> = logits.iter().map(|&l| l - max).collect();
            kernels::exp_in_place(&mut e);
            e.iter().map(|&v| f64::from(v)).sum()
        } else {
            0.0
        };
        Softmax { max, sum }
    }

    pub fn prob(&self, logit: f32) -> f32 {
        match self.sum > 0.0 {
            true => (f64::from(kernels::exp_portable(logit - self.max)) / self.sum) as f32,
            false => 0.0,
        }
    }

    /// The probability of any of `ids` (each counted once): P(end of text)
    /// for the meter's stop tokens.
    pub fn mass(&self, logits: &[f32], ids: &[u32]) -> f32 {
        if self.sum <= 0.0 {
            return 0.0;
        }
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mass: f64 = ids.iter().filter_map(|&i| logits.get(i as usize)).map(|&l| f64::from(kernels::exp_portable(l - self.max))).sum();
        (mass / self.sum) as f32
    }
}

/// The `k` most likely tokens with softmax probabilities.
fn top_candidates(logits: &[f32], softmax: &Softmax, k: usize, piece: impl Fn(u32) -> String) -> Vec<Candidate> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(order.len());
    order.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    order.truncate(k);
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    order
        .into_iter()
        .map(|id| {
            let logit = logits[id as usize];
            Candidate { id, text: piece(id), logit, prob: softmax.prob(logit) }
        })
        .collect()
}
