//! The page <-> worker boundary: the only messages that cross it, one enum
//! each way, named fields, sent as JSON strings through `postMessage`. This is
//! the one file of the page/worker side that derives serde. It re-uses the
//! engine's plain data types (settings, timings, candidates), never its code,
//! so the page's wasm does not carry candle.

use serde::{Deserialize, Serialize};

pub use crate::engine::inspect::ModelShape;
pub use crate::hub_links::*;
pub use crate::engine::{Candidate, Conversation, Message, Mode, Precision, Prompt, SamplingSettings, StopReason, Timings, TokenScore};

/// Which of the two loaded models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Foundation,
    Instruct,
}

impl Slot {
    /// Its place in per-slot arrays: foundation 0, instruct 1.
    pub fn index(self) -> usize {
        match self {
            Slot::Foundation => 0,
            Slot::Instruct => 1,
        }
    }
}

/// Which model a tab's answers come from (Foundation runs on the foundation
/// slot, Instruct and Chat on the instruct slot).
impl Mode {
    pub fn slot(self) -> Slot {
        match self {
            Mode::Foundation => Slot::Foundation,
            Mode::Instruct | Mode::Chat => Slot::Instruct,
        }
    }
}

/// Where a model comes from: `{hub}/{repo}/resolve/{revision}/{file}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSource {
    /// Base URL of a Hugging Face-style hub, e.g. `https://huggingface.co`.
    pub hub: String,
    /// `owner/name` (a checkpoint repo) or `owner/name/file.gguf` (one GGUF file).
    pub spec: String,
    /// A branch, tag or commit (`main` by default).
    #[serde(default = "main_revision")]
    pub revision: String,
}

fn main_revision() -> String {
    "main".into()
}

/// What the worker does with the browser's cache of model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Read from it, store downloads in it.
    #[default]
    Use,
    /// Neither read nor store (`?cache=off`).
    Off,
    /// Tests: every store fails as if the quota were full (`?cache=full`).
    SimulateFull,
}

/// Where a file's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Network,
    Cache,
    /// A file the user picked or dropped (read in the worker, never uploaded).
    Local,
}

/// One file in the browser's model cache (the storage panel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedFile {
    pub url: String,
    /// `{hub}/{owner}/{name}`: what a per-model Delete removes.
    pub model: String,
    pub file: String,
    pub bytes: u64,
}

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// (Re)load both models; drops whatever was loaded and any queued jobs.
    /// `None` means "no model from a hub for this slot": its tab says so, or a
    /// `LoadLocal` for that slot follows.
    /// `ask_first`: a model that is not wholly cached is not downloaded;
    /// the worker says how much it would download (`DownloadNeeded`) and the
    /// page sends `Load` again on the user's click. `fresh`: forget which
    /// commit each revision was pinned to (the user asked for the newest).
    Load {
        foundation: Option<ModelSource>,
        instruct: Option<ModelSource>,
        precision: Precision,
        cache: CacheMode,
        #[serde(default)]
        ask_first: bool,
        #[serde(default)]
        fresh: bool,
    },
    /// Load one slot from files the user picked. The message is posted as
    /// `[json, [File, ...]]`: the File objects travel by structured clone (no
    /// bytes copied into the page), the worker reads them.
    LoadLocal { slot: Slot, precision: Precision },
    /// Send `FromWorker::Storage`: what the model cache holds.
    ListCache,
    /// Remove every cached file whose URL starts with `{model}/resolve/`.
    DeleteCached { model: String },
    /// Generate one answer. Jobs run one after the other, in order.
    Ask(Ask),
    /// Stop the running job and drop every queued one.
    Stop,
    /// The model picker: what `source` would download and take in memory,
    /// without loading it (`FromWorker::Inspected`).
    Inspect { source: ModelSource },
}

/// What a model would take, before it is chosen (`ToWorker::Inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The bytes its files take, from the hub's listing (None: no listing).
    pub download_bytes: Option<u64>,
    /// Every file it needs is in this browser's cache already.
    pub cached: bool,
    /// Its weight count and stored size (None: `shape_problem` says why).
    pub shape: Option<ModelShape>,
    pub shape_problem: Option<String>,
}

/// One answer to write: `job` names it in every reply about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    pub job: u64,
    pub prompt: Prompt,
    pub settings: SamplingSettings,
    /// The model to ask, when not the one the prompt's mode uses (the
    /// Compare tab: instruct weights on the raw question, foundation weights
    /// on the templated prompt).
    #[serde(default)]
    pub slot: Option<Slot>,
    /// Rate these answer ids under the prompt instead of generating
    /// (`LanguageModel::score`; the reply is `FromWorker::Scored`).
    #[serde(default)]
    pub score: Option<Vec<u32>>,
    /// A branch: the answer starts with these ids (the answer's tokens
    /// before a step, then the candidate chosen there) and goes on from
    /// them (`LanguageModel::start_branch`; `FromWorker::Forced` gives
    /// their texts). Empty: an answer from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub force: Vec<u32>,
}

impl Ask {
    /// An answer to `prompt` by the model its mode uses, from the start.
    pub fn new(job: u64, prompt: Prompt, settings: SamplingSettings) -> Self {
        Self { job, prompt, settings, slot: None, score: None, force: vec![] }
    }

    pub fn slot(&self) -> Slot {
        self.slot.unwrap_or_else(|| self.prompt.mode().slot())
    }
}

/// One token of a prompt, for the Prompt tab's token view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptToken {
    pub id: u32,
    pub piece: String,
    pub special: bool,
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and listening, on `threads` threads (the
    /// threaded build's helpers that started, plus its own; 1 for the
    /// single-thread build). `note`: why fewer threads run than were asked.
    Ready { threads: usize, note: Option<String> },
    /// Download progress of one file (`total: None` when the size is unknown).
    Progress { slot: Slot, file: String, done: u64, total: Option<u64>, origin: Origin },
    /// Something went wrong that does not stop the model (e.g. the cache is full).
    Warning { slot: Slot, message: String },
    /// The model cache: its files, and `navigator.storage.estimate()`.
    Storage { files: Vec<CachedFile>, usage: Option<f64>, quota: Option<f64>, message: Option<String> },
    /// Files fetched; the weights are being prepared.
    Preparing { slot: Slot },
    /// The models that are not wholly cached, not downloaded yet (`Load`
    /// with `ask_first`), all in one message so the page never offers a
    /// partial total: each slot with what it would download (`None`: the
    /// hub has no file listing to tell).
    DownloadNeeded { sizes: Vec<(Slot, Option<u64>)> },
    /// A model is ready to answer. `commit`: the hub commit its files came
    /// from (`None`: a mirror or host that names none).
    Loaded {
        slot: Slot,
        spec: String,
        weight_bytes: u64,
        load_ms: f64,
        #[serde(default)]
        commit: Option<String>,
        /// The most tokens it reads (prompt and answer together).
        #[serde(default)]
        context_tokens: u64,
    },
    /// The revision a cached model was pinned to has moved on to `commit`
    /// (checked at most hourly, one request, when online).
    NewerCommit { slot: Slot, revision: String, commit: String },
    /// A model could not be fetched or loaded: `message` says which file and why.
    LoadFailed { slot: Slot, message: String },
    /// A job started: the exact prompt string and its tokens.
    Started { job: u64, prompt: String, tokens: Vec<PromptToken> },
    /// A branch's forced tokens, as text (one each), before its first `Token`.
    Forced { job: u64, texts: Vec<String> },
    /// One generated token (`text` may be empty mid-character); `end_prob`:
    /// P(end of text) at this step (`Generation::end_probs`).
    Token {
        job: u64,
        id: u32,
        text: String,
        candidates: Vec<Candidate>,
        #[serde(default)]
        end_prob: f32,
    },
    /// A job ended. `stop_reason: None` means it was stopped by the user.
    /// `reply` is the decoded answer without special tokens (what the chat
    /// history keeps, as transformers' pipeline does). `end_candidates`: when
    /// the model picked end-of-text and candidates were asked for, what it
    /// weighed at that step (why an answer ended at once); empty otherwise.
    /// `end_prob`: P(end of text) at the step that picked end-of-text.
    Done {
        job: u64,
        stop_reason: Option<StopReason>,
        timings: Timings,
        token_ids: Vec<u32>,
        reply: String,
        end_candidates: Vec<Candidate>,
        #[serde(default)]
        end_prob: Option<f32>,
    },
    /// An `Ask` with `score`: each answer token's rank and probability.
    Scored { job: u64, scores: Vec<TokenScore> },
    /// A job failed.
    Failed { job: u64, message: String },
    /// `ToWorker::Inspect`'s answer: the report, or why the hub has none.
    Inspected { source: ModelSource, report: Result<ModelReport, String> },
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message to the worker: {e}"))
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message from the worker: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = ToWorker::Stop;
        assert_eq!(ToWorker::from_json(&m.to_json()).unwrap(), m);
        let mut chat = Conversation::new(Some("Be brief.".into()));
        chat.user("Hi");
        for prompt in [Prompt::Raw("Hi".into()), Prompt::Instruct("Hi".into()), Prompt::Chat(chat)] {
            let m = ToWorker::Ask(Ask { slot: Some(Slot::Foundation), force: vec![1, 2], ..Ask::new(7, prompt, SamplingSettings::greedy(3)) });
            assert_eq!(ToWorker::from_json(&m.to_json()).unwrap(), m);
        }
        let m = FromWorker::Progress { slot: Slot::Instruct, file: "x".into(), done: 1, total: Some(2), origin: Origin::Cache };
        assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
        let why = vec![Candidate { id: 2, text: "<|im_end|>".into(), logit: 20.5, prob: 0.67 }];
        let m = FromWorker::Done {
            job: 3,
            stop_reason: Some(StopReason::EndOfText),
            timings: Timings::default(),
            token_ids: vec![2],
            reply: String::new(),
            end_candidates: why,
            end_prob: Some(0.67),
        };
        assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
    }
}
