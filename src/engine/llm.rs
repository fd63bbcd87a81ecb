//! Steps 1-4 joined: a [`LanguageModel`] is one checkpoint ready to answer:
//! weights + tokenizer + chat template + stop tokens, and the step API the CLI
//! and the web worker drive (`start` a prompt, then `next_token` until done).

use web_time::Instant;

use super::error::{EngineError, Result};
use super::generate::{Generation, SamplingSettings, Step, StopReason};
use super::model::Model;
use super::weights::{read_gguf_header, Precision, ReadSeek};
use super::template::{ChatTemplate, Message};
use super::tokenizer::TextTokenizer;

/// The bytes of one model, in either form. The engine never fetches: callers
/// (the CLI from disk, the worker from the network or the browser cache) do.
pub enum ModelFiles<'a> {
    /// One GGUF file: weights, tokenizer and chat template in one.
    Gguf(&'a [u8]),
    /// A Hugging Face checkpoint folder's files.
    Checkpoint(CheckpointFiles<'a>),
}

/// A checkpoint's small JSON files as bytes, its weights as readers.
pub struct CheckpointFiles<'a> {
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    pub tokenizer_config_json: Option<Vec<u8>>,
    pub generation_config_json: Option<Vec<u8>>,
    /// `model.safetensors`, or every shard the index names: read tensor by
    /// tensor (bytes in memory through a `Cursor`, a file, or a browser Blob).
    pub safetensors: Vec<Box<dyn ReadSeek + 'a>>,
}

/// End-of-turn markers of common chat templates: when the template writes one,
/// the model ends its turn with it, so it stops generation too.
const END_OF_TURN_MARKERS: [&str; 5] = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"];

/// A model ready to answer.
pub struct LanguageModel {
    model: Model,
    pub tokenizer: TextTokenizer,
    pub template: Option<ChatTemplate>,
    pub eos_ids: Vec<u32>,
    pub precision: Precision,
    /// The ids whose keys/values sit in the model's KV cache, in order.
    cached: Vec<u32>,
}

impl LanguageModel {
    pub fn load(files: ModelFiles<'_>, precision: Precision) -> Result<Self> {
        match files {
            ModelFiles::Gguf(bytes) => Self::load_gguf(&mut std::io::Cursor::new(bytes), precision),
            ModelFiles::Checkpoint(mut f) => {
                let tokenizer = TextTokenizer::from_json(&f.tokenizer_json)?;
                let template = match &f.tokenizer_config_json {
                    Some(b) => ChatTemplate::from_tokenizer_config(b)?,
                    None => None,
                };
                let mut eos_ids = match &f.generation_config_json {
                    Some(b) => eos_from_generation_config(b)?,
                    None => vec![],
                };
                if let Some(id) = template.as_ref().and_then(|t| tokenizer.token_id(&t.eos_token)) {
                    eos_ids.push(id);
                }
                if f.safetensors.is_empty() {
                    return Err(EngineError::MissingFile("model.safetensors".into()));
                }
                let shards = f.safetensors.iter_mut().map(|r| &mut **r as &mut dyn ReadSeek).collect();
                let model = Model::from_safetensors(&f.config_json, shards, precision)?;
                Self::assemble(model, tokenizer, template, eos_ids, precision)
            }
        }
    }

    /// Loads a GGUF file from any reader (the worker keeps the file's bytes
    /// outside wasm memory and hands a reader over them).
    pub fn load_gguf(reader: &mut dyn ReadSeek, precision: Precision) -> Result<Self> {
        let ct = read_gguf_header(reader, "the GGUF file")?;
        let tokenizer = TextTokenizer::from_gguf(&ct)?;
        let token_of = |key: &str| {
            ct.metadata.get(key).and_then(|v| v.to_u32().ok()).map(|id| (id, tokenizer.decode(&[id], false).unwrap_or_default()))
        };
        let bos = token_of("tokenizer.ggml.bos_token_id");
        let eos = token_of("tokenizer.ggml.eos_token_id");
        let template = match ct.metadata.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()) {
            Some(src) => Some(ChatTemplate::new(src, bos.as_ref().map_or("", |b| b.1.as_str()), eos.as_ref().map_or("", |e| e.1.as_str()))?),
            None => None,
        };
        let eos_ids = eos.map(|e| vec![e.0]).unwrap_or_default();
        let model = Model::from_gguf_reader(&ct, reader, precision)?;
        Self::assemble(model, tokenizer, template, eos_ids, precision)
    }

    /// Joins the parts and settles the stop ids.
    fn assemble(model: Model, tokenizer: TextTokenizer, template: Option<ChatTemplate>, mut eos_ids: Vec<u32>, precision: Precision) -> Result<Self> {
        // Checked at load, not at the first token that falls outside the embedding.
        if tokenizer.vocab_size() > model.config.vocab_size {
            return Err(EngineError::BadConfig {
                file: "the tokenizer".into(),
                detail: format!("it has {} tokens but the model's embedding has {} rows", tokenizer.vocab_size(), model.config.vocab_size),
            });
        }
        if let Some(t) = &template {
            for marker in END_OF_TURN_MARKERS {
                if t.source().contains(marker) {
                    eos_ids.extend(tokenizer.token_id(marker));
                }
            }
        }
        if eos_ids.is_empty() {
            eos_ids.extend(tokenizer.token_id("<|endoftext|>"));
        }
        eos_ids.sort_unstable();
        eos_ids.dedup();
        Ok(Self { model, tokenizer, template, eos_ids, precision, cached: vec![] })
    }

    pub fn config(&self) -> &super::config::Config {
        &self.model.config
    }

    pub fn weight_bytes(&self) -> usize {
        self.model.weight_bytes
    }

    /// How the weights are stored ("Q8_0", "BF16", ...): which kernels run.
    pub fn weight_kinds(&self) -> std::collections::BTreeSet<String> {
        self.model.weight_kinds()
    }

    /// The prompt string the chat template builds for `messages`.
    pub fn chat_prompt(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.template.as_ref().ok_or(EngineError::NoChatTemplate)?.render(messages, add_generation_prompt)
    }

    /// Encodes `prompt`, re-uses the KV cache for the longest prefix it shares
    /// with what the cache holds, and runs the rest (the prefill).
    pub fn start(&mut self, prompt: &str, settings: SamplingSettings) -> Result<Generation> {
        let ids = self.tokenizer.encode(prompt)?;
        self.start_ids(ids, settings)
    }

    pub fn start_ids(&mut self, ids: Vec<u32>, settings: SamplingSettings) -> Result<Generation> {
        if ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let context = self.model.config.context_length;
        if ids.len() >= context {
            return Err(EngineError::PromptTooLong { prompt_tokens: ids.len(), context });
        }
        let mut generation = Generation::new(settings, ids.clone(), self.eos_ids.clone())?;
        // At least the last prompt token is run, to get the logits for the first pick.
        let common = common_prefix(&self.cached, &ids).min(ids.len() - 1);
        self.model.truncate_cache(common)?;
        self.cached.truncate(common);
        let started = Instant::now();
        let logits = self.run(&ids[common..])?;
        generation.timings.prompt_tokens = ids.len();
        generation.timings.reused_tokens = common;
        generation.timings.prefill_ms = elapsed_ms(started);
        generation.pending_logits = Some(logits);
        Ok(generation)
    }

    /// One token of `generation`; `Step::Done` once it has ended.
    pub fn next_token(&mut self, generation: &mut Generation) -> Result<Step> {
        if let Some(reason) = generation.stopped {
            return Ok(Step::Done(reason));
        }
        if generation.generated_ids().len() >= generation.settings.max_new_tokens {
            generation.stopped = Some(StopReason::MaxNewTokens);
            return Ok(Step::Done(StopReason::MaxNewTokens));
        }
        let started = Instant::now();
        let logits = match (generation.pending_logits.take(), generation.unfed.take()) {
            (Some(logits), _) => logits,
            (None, Some(id)) => self.run(&[id])?,
            (None, None) => return Err(EngineError::Settings("this answer was not started".into())),
        };
        let tokenizer = &self.tokenizer;
        let (id, candidates) = generation.pick(&logits, |id| tokenizer.piece(id))?;
        generation.context.push(id);
        generation.timings.generated_tokens += 1;
        if generation.timings.generated_tokens > 1 {
            generation.timings.decode_ms += elapsed_ms(started);
        }
        if generation.eos_ids.contains(&id) && !generation.settings.ignore_eos {
            generation.stopped = Some(StopReason::EndOfText);
            generation.end_candidates = candidates;
            return Ok(Step::Done(StopReason::EndOfText));
        }
        generation.unfed = Some(id);
        let text = generation.decode.step(&self.tokenizer, id)?;
        generation.text.push_str(&text);
        let end_prob = generation.end_probs.last().copied().unwrap_or(0.0);
        Ok(Step::Token { id, text, candidates, end_prob })
    }

    /// A branch: an answer to `ids` whose first tokens are `forced` (the
    /// page's "continue from this candidate": the answer's tokens before the
    /// step, then the token chosen there), generated as usual after them.
    /// The KV cache is re-used as far as it holds `ids` + `forced` (all of
    /// it when the cache still holds the answer branched from), so only the
    /// chosen token and what follows are computed. Returns the generation
    /// (its `generated_ids` start with `forced`; `end_probs` cover the
    /// picked steps only) and each forced token's text.
    pub fn start_branch(&mut self, ids: Vec<u32>, forced: &[u32], settings: SamplingSettings) -> Result<(Generation, Vec<String>)> {
        if forced.len() > settings.max_new_tokens {
            let detail = format!("a branch at token {} needs max_new_tokens of at least {}", forced.len(), forced.len());
            return Err(EngineError::Settings(detail));
        }
        let vocab = self.model.config.vocab_size;
        if let Some(bad) = forced.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::Settings(format!("token id {bad} is not in the model's vocabulary ({vocab} tokens)")));
        }
        let eos_at = forced.iter().position(|id| self.eos_ids.contains(id));
        if eos_at.is_some_and(|i| i + 1 < forced.len()) {
            return Err(EngineError::Settings("a branch cannot go on after an end-of-text token".into()));
        }
        let prompt_len = ids.len();
        let all: Vec<u32> = ids.into_iter().chain(forced.iter().copied()).collect();
        let mut g = self.start_ids(all, settings)?;
        // The timings keep counting the forced tokens as read (prefill), not generated.
        g.prompt_len = prompt_len;
        let mut texts = Vec::with_capacity(forced.len());
        for &id in forced {
            g.skip_pick()?;
            if self.eos_ids.contains(&id) && !g.settings.ignore_eos {
                g.stopped = Some(StopReason::EndOfText);
                g.pending_logits = None;
                texts.push(String::new());
                break;
            }
            let text = g.decode.step(&self.tokenizer, id)?;
            g.text.push_str(&text);
            texts.push(text);
        }
        Ok((g, texts))
    }

    /// Runs to the end: the convenience the CLI and tests use.
    pub fn generate(&mut self, prompt: &str, settings: SamplingSettings) -> Result<Generation> {
        let mut g = self.start(prompt, settings)?;
        while let Step::Token { .. } = self.next_token(&mut g)? {}
        Ok(g)
    }

    /// Runs a throwaway prompt (a batch, then one token) and forgets it.
    ///
    /// Why: browsers first run wasm in a baseline compiler and recompile a
    /// function optimized only after it has run for a while. A prompt is read
    /// in one batched pass, so a freshly loaded model would read the user's
    /// first prompt mostly in baseline code. The worker calls this at load
    /// (its time counts in the load time) so the first answer runs optimized.
    /// Every kernel runs for a batch and for one token alike; both are warmed.
    pub fn warm_up(&mut self) -> Result<()> {
        self.reset();
        // The batch and the one token after it must fit in the context.
        let rows = 8.min(self.model.config.context_length.saturating_sub(1));
        if rows == 0 {
            return Ok(());
        }
        let batch: Vec<u32> = (0..rows as u32).collect();
        let result = self.run(&batch).and_then(|_| self.run(&[0]));
        self.reset();
        result.map(|_| ())
    }

    /// How this model rates an answer another model wrote (teacher forcing):
    /// for each of `answer`'s tokens, its rank (1 = this model's own greedy
    /// pick) and probability here, given `prompt` and the answer before it.
    /// One batched pass over both (re-using the KV cache for a shared
    /// prefix), no generation. At most [`MAX_SCORED`] answer tokens.
    pub fn score(&mut self, prompt: &[u32], answer: &[u32]) -> Result<Vec<TokenScore>> {
        if prompt.is_empty() || answer.is_empty() {
            return Ok(vec![]);
        }
        let answer = &answer[..answer.len().min(MAX_SCORED)];
        let all: Vec<u32> = prompt.iter().chain(answer).copied().collect();
        let context = self.model.config.context_length;
        if all.len() > context {
            return Err(EngineError::PromptTooLong { prompt_tokens: all.len(), context });
        }
        // Row p of the logits predicts token p + 1: the rows from the last
        // prompt token on are the ones that rate the answer.
        let common = common_prefix(&self.cached, &all).min(prompt.len() - 1);
        self.model.truncate_cache(common)?;
        self.cached.truncate(common);
        let logits = self.model.forward_all(&all[common..])?;
        self.cached.extend_from_slice(&all[common..]);
        let vocab = logits.len() / (all.len() - common);
        Ok(answer
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let row = &logits[(prompt.len() - 1 + i - common) * vocab..][..vocab];
                let target = row.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY);
                let rank = 1 + row.iter().filter(|&&l| l > target).count() as u32;
                TokenScore { id, rank, prob: super::generate::Softmax::of(row).prob(target) }
            })
            .collect())
    }

    /// Forgets the KV cache (the next prompt is read from scratch).
    pub fn reset(&mut self) {
        self.model.clear_cache();
        self.cached.clear();
    }

    /// Runs ids through the model after the cached ones.
    fn run(&mut self, ids: &[u32]) -> Result<candle_core::Tensor> {
        // On an error the model leaves its cache as it was, matching `cached`.
        let logits = self.model.forward(ids)?;
        self.cached.extend_from_slice(ids);
        let n = logits.len();
        Ok(candle_core::Tensor::from_vec(logits, n, &candle_core::Device::Cpu)?)
    }
}

/// The most answer tokens [`LanguageModel::score`] rates in one pass (its
/// logits take `vocab` floats a token: 512 × 49152 × 4 bytes ≈ 100 MB).
pub const MAX_SCORED: usize = 512;

/// One answer token as another model rates it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenScore {
    pub id: u32,
    /// 1: that model would have picked it too (greedy).
    pub rank: u32,
    pub prob: f32,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// `eos_token_id` of `generation_config.json`: a number or a list.
fn eos_from_generation_config(bytes: &[u8]) -> Result<Vec<u32>> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::BadConfig { file: "generation_config.json".into(), detail: e.to_string() })?;
    Ok(match &v["eos_token_id"] {
        serde_json::Value::Number(n) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        serde_json::Value::Array(a) => a.iter().filter_map(|n| n.as_u64()).map(|n| n as u32).collect(),
        _ => vec![],
    })
}

/// The shard file names of a `model.safetensors.index.json` (its `weight_map` values), deduplicated.
pub fn shards_from_index(bytes: &[u8]) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::BadConfig { file: "model.safetensors.index.json".into(), detail: e.to_string() })?;
    let map = v["weight_map"].as_object().ok_or_else(|| EngineError::BadConfig {
        file: "model.safetensors.index.json".into(),
        detail: "no weight_map".into(),
    })?;
    let mut files: Vec<String> = map.values().filter_map(|f| f.as_str()).map(String::from).collect();
    // Shards sit next to the index: a path would let a file name reach elsewhere.
    if let Some(bad) = files.iter().find(|f| f.is_empty() || f.contains(['/', '\\']) || f.contains("..")) {
        return Err(EngineError::BadConfig {
            file: "model.safetensors.index.json".into(),
            detail: format!("shard name \"{bad}\" is not a plain file name in the model's folder"),
        });
    }
    files.sort();
    files.dedup();
    Ok(files)
}
