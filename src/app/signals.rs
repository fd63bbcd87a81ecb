//! The page's signals: every piece of state in `state.rs`, in one `Copy`
//! struct provided once as context.

use leptos::prelude::*;

use super::state::{Answer, ChatTurn, Grid, ModelStatus, Settings, Shift, StorageInfo, Tab};
use super::link::PageConfig;
use super::threads::EngineStatus;
use crate::engine::modes::DEFAULT_FOLLOW_UP;
use crate::protocol::{Conversation, ModelReport, ModelSource, Slot};

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
    /// A link's follow-ups not yet asked: the chat asks them in order after
    /// the first Ask, so the link reproduces the whole conversation.
    pub replay: StoredValue<Vec<String>>,
    /// The instruct answer as the foundation model rates it.
    pub shift: RwSignal<Shift>,
    /// The Compare tab's own two answers.
    pub grid: RwSignal<Grid>,
    /// The model picker's reports, by model (`ToWorker::Inspect`).
    pub reports: RwSignal<Vec<(ModelSource, Result<ModelReport, String>)>>,
    /// The link "Copy link" made, and whether the clipboard took it.
    pub share_link: RwSignal<Option<(String, bool)>>,
    /// Which engine build runs, on how many threads (`threads.rs`).
    pub engine: RwSignal<EngineStatus>,
}

impl AppState {
    pub fn new(config: PageConfig) -> Self {
        let settings = Settings {
            sampling: config.sampling.clone(),
            follow_up_max_new_tokens: config.follow_up_max_new_tokens,
            precision: config.precision,
            threads: config.threads,
        };
        Self {
            question: RwSignal::new(config.question.clone()),
            share_link: RwSignal::new(None),
            engine: RwSignal::new(EngineStatus::default()),
            reports: RwSignal::new(vec![]),
            grid: RwSignal::new(Grid::default()),
            shift: RwSignal::new(Shift::default()),
            notice: RwSignal::new(config.warning.clone()),
            replay: StoredValue::new(config.follow_ups.clone()),
            system_prompt: RwSignal::new(config.system.clone()),
            config: StoredValue::new(config),
            tab: RwSignal::new(Tab::Instruct),
            foundation: RwSignal::new(Answer::default()),
            instruct: RwSignal::new(Answer::default()),
            chat: RwSignal::new(vec![]),
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
            return;
        }
        match self.grid.with_untracked(|g| (g.instruct_raw.job == Some(job), g.foundation_templated.job == Some(job))) {
            (true, _) => self.grid.update(|g| f(&mut g.instruct_raw)),
            (_, true) => self.grid.update(|g| f(&mut g.foundation_templated)),
            _ => {}
        }
    }

    pub fn any_busy(&self) -> bool {
        self.foundation.with(|a| a.phase.busy())
            || self.instruct.with(|a| a.phase.busy())
            || self.chat.with(|c| c.iter().any(|t| t.answer.phase.busy()))
            || self.grid.with(|g| g.instruct_raw.phase.busy() || g.foundation_templated.phase.busy())
    }

    /// The chat's conversation for its next turn, ending with `new_user`.
    pub fn conversation(&self, new_user: &str) -> Conversation {
        let system = self.system_prompt.get_untracked();
        self.chat.with_untracked(|turns| super::state::conversation(&system, turns, new_user))
    }
}
