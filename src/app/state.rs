//! The page's state: plain data in signals, provided once as context.

use leptos::prelude::*;

use super::text::{PageConfig, DEFAULT_FOLLOW_UP};
use crate::protocol::{CachedFile, Candidate, Origin, Precision, PromptToken, SamplingSettings, Slot, StopReason, Timings};

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Phase {
    /// Nothing asked yet.
    #[default]
    Idle,
    /// Queued in the worker (maybe waiting for the model to load).
    Waiting,
    /// The prompt is being read (prefill).
    Reading,
    Streaming,
    Done(StopReason),
    Stopped,
    Failed(String),
}

impl Phase {
    pub fn busy(&self) -> bool {
        matches!(self, Phase::Waiting | Phase::Reading | Phase::Streaming)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenToken {
    pub id: u32,
    pub text: String,
    pub candidates: Vec<Candidate>,
}

/// One answer as it streams in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    pub job: Option<u64>,
    pub phase: Phase,
    pub prompt: String,
    pub prompt_tokens: Vec<PromptToken>,
    pub text: String,
    pub tokens: Vec<GenToken>,
    pub timings: Option<Timings>,
    /// What the chat history keeps (decoded without special tokens).
    pub reply: String,
    pub max_new_tokens: usize,
    /// The step that picked end-of-text, when candidates were asked for: the
    /// id picked and what the model weighed (why an answer ended at once).
    pub end_step: Option<GenToken>,
}

impl Answer {
    pub fn waiting(job: u64, max_new_tokens: usize) -> Self {
        Self { job: Some(job), phase: Phase::Waiting, max_new_tokens, ..Self::default() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatTurn {
    pub user: String,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileProgress {
    pub file: String,
    pub done: u64,
    pub total: Option<u64>,
    pub origin: Origin,
    /// `Date.now()` at the first progress event and at the latest one (for speed).
    pub started_ms: f64,
    pub updated_ms: f64,
}

/// The storage panel: what the worker reported of the model cache.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageInfo {
    pub files: Vec<CachedFile>,
    pub usage: Option<f64>,
    pub quota: Option<f64>,
    pub message: Option<String>,
    /// `navigator.storage.persisted()` / the answer to the persist button.
    pub persisted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum LoadPhase {
    #[default]
    Idle,
    /// No model set for this slot.
    None,
    Downloading,
    Preparing,
    Ready { weight_bytes: u64, load_ms: f64 },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelStatus {
    pub spec: String,
    /// Where it comes from, in words, when that is not the official hub's
    /// `main` (a link could otherwise load other weights under a known name).
    pub origin: Option<String>,
    pub phase: LoadPhase,
    pub files: Vec<FileProgress>,
    /// Trouble that did not stop the model (e.g. the cache was full).
    pub warning: Option<String>,
}

/// The settings panel: the engine's sampling settings (the tutorial's
/// defaults: greedy, 30 new tokens) plus what only the page has.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub sampling: SamplingSettings,
    pub follow_up_max_new_tokens: usize,
    pub precision: Precision,
}

impl Settings {
    pub fn sampling(&self, max_new_tokens: usize, show_candidates: usize) -> SamplingSettings {
        SamplingSettings { max_new_tokens, show_candidates, ignore_eos: false, ..self.sampling.clone() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Foundation,
    Instruct,
    Chat,
    Prompt,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Foundation, Tab::Instruct, Tab::Chat, Tab::Prompt];
    pub fn id(self) -> &'static str {
        match self {
            Tab::Foundation => "foundation",
            Tab::Instruct => "instruct",
            Tab::Chat => "chat",
            Tab::Prompt => "prompt",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Tab::Foundation => "Foundation",
            Tab::Instruct => "Instruct",
            Tab::Chat => "Chat",
            Tab::Prompt => "Prompt",
        }
    }
}

/// Every signal of the page; `Copy`, shared through context.
#[derive(Clone, Copy)]
pub struct AppState {
    pub config: StoredValue<PageConfig>,
    pub question: RwSignal<String>,
    pub tab: RwSignal<Tab>,
    pub foundation: RwSignal<Answer>,
    pub instruct: RwSignal<Answer>,
    pub chat: RwSignal<Vec<ChatTurn>>,
    pub system_prompt: RwSignal<String>,
    pub follow_up: RwSignal<String>,
    pub settings: RwSignal<Settings>,
    pub foundation_model: RwSignal<ModelStatus>,
    pub instruct_model: RwSignal<ModelStatus>,
    /// A message at the top of the page (worker restarted, bad URL value, ...).
    pub notice: RwSignal<Option<String>>,
    pub next_job: RwSignal<u64>,
    pub storage: RwSignal<StorageInfo>,
    /// The storage panel is open (it refreshes when a model finishes loading).
    pub storage_open: RwSignal<bool>,
}

impl AppState {
    pub fn new(config: PageConfig) -> Self {
        let settings = Settings {
            sampling: SamplingSettings::default(),
            follow_up_max_new_tokens: 40,
            precision: config.precision,
        };
        Self {
            question: RwSignal::new(config.question.clone()),
            notice: RwSignal::new(config.warning.clone()),
            config: StoredValue::new(config),
            tab: RwSignal::new(Tab::Instruct),
            foundation: RwSignal::new(Answer::default()),
            instruct: RwSignal::new(Answer::default()),
            chat: RwSignal::new(vec![]),
            system_prompt: RwSignal::new(String::new()),
            follow_up: RwSignal::new(DEFAULT_FOLLOW_UP.to_string()),
            settings: RwSignal::new(settings),
            foundation_model: RwSignal::new(ModelStatus::default()),
            instruct_model: RwSignal::new(ModelStatus::default()),
            next_job: RwSignal::new(1),
            storage: RwSignal::new(StorageInfo::default()),
            storage_open: RwSignal::new(false),
        }
    }

    pub fn model(&self, slot: Slot) -> RwSignal<ModelStatus> {
        match slot {
            Slot::Foundation => self.foundation_model,
            Slot::Instruct => self.instruct_model,
        }
    }

    pub fn job_id(&self) -> u64 {
        let id = self.next_job.get_untracked();
        self.next_job.set(id + 1);
        id
    }

    /// Applies `f` to the answer that `job` belongs to, if it still exists.
    pub fn with_answer(&self, job: u64, f: impl FnOnce(&mut Answer)) {
        for sig in [self.foundation, self.instruct] {
            if sig.with_untracked(|a| a.job == Some(job)) {
                sig.update(f);
                return;
            }
        }
        if let Some(i) = self.chat.with_untracked(|c| c.iter().position(|t| t.answer.job == Some(job))) {
            self.chat.update(|c| f(&mut c[i].answer));
        }
    }

    pub fn any_busy(&self) -> bool {
        self.foundation.with(|a| a.phase.busy())
            || self.instruct.with(|a| a.phase.busy())
            || self.chat.with(|c| c.iter().any(|t| t.answer.phase.busy()))
    }

    /// The chat's messages for its next turn: system prompt, finished turns, `new_user`.
    pub fn chat_messages(&self, new_user: &str) -> Vec<crate::protocol::Message> {
        use crate::protocol::Message;
        let mut out = vec![];
        let system = self.system_prompt.get_untracked();
        if !system.trim().is_empty() {
            out.push(Message::system(&system));
        }
        self.chat.with_untracked(|turns| {
            for t in turns {
                if matches!(t.answer.phase, Phase::Done(_) | Phase::Stopped) {
                    out.push(Message::user(&t.user));
                    out.push(Message::assistant(&t.answer.reply));
                }
            }
        });
        out.push(Message::user(new_user));
        out
    }
}
