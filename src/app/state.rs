//! The page's state as plain data (what the signals in `signals.rs` hold),
//! compiled and unit-tested natively too.

use crate::protocol::{CachedFile, Candidate, Conversation, Origin, Precision, PromptToken, SamplingSettings, StopReason, Timings};

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

    /// The page's `data-phase` (what the tests wait for).
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Waiting => "waiting",
            Phase::Reading => "reading",
            Phase::Streaming => "streaming",
            Phase::Done(_) => "done",
            Phase::Stopped => "stopped",
            Phase::Failed(_) => "failed",
        }
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
    /// P(end of text) at each step: one per token, then the step that
    /// picked end-of-text (the end-of-text meter).
    pub end_probs: Vec<f32>,
    /// Every id it picked, an end-of-text included (from `Done`).
    pub generated_ids: Vec<u32>,
    /// The settings it was asked with (a branch goes on with the same).
    pub sampling: Option<SamplingSettings>,
    /// Set when this answer is a branch of another.
    pub branch: Option<Branch>,
}

/// A branch: an answer that takes another candidate at one step and goes
/// on from there (the model's KV cache re-used up to that step).
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// The step (0-based token index) where it leaves the answer it came from.
    pub step: usize,
    /// The token picked there before, and the one taken instead (as text).
    pub replaced: String,
    pub chosen: String,
    /// The first answer, before any branch: the way back.
    pub original: Box<Answer>,
}

/// The candidates the model weighed at `step`: a token's, or (one past the
/// last token) those of the step that picked end-of-text.
pub fn step_candidates(a: &Answer, step: usize) -> Option<&GenToken> {
    a.tokens.get(step).or_else(|| (step == a.tokens.len()).then_some(a.end_step.as_ref()).flatten())
}

/// A branch of `a` at `step` with candidate `id`, as job `job`: the answer
/// to show while it is written (the steps before it and the chosen token,
/// each with what the model weighed there, which a branch does not change)
/// and the ids the worker forces. None while `a` is still being written, or
/// for a step or candidate it does not have.
pub fn branch_answer(a: &Answer, step: usize, id: u32, job: u64) -> Option<(Answer, Vec<u32>)> {
    let here = step_candidates(a, step)?;
    let chosen = here.candidates.iter().find(|c| c.id == id)?;
    if a.phase.busy() || a.job.is_none() || id == here.id {
        return None;
    }
    let mut tokens = a.tokens[..step].to_vec();
    tokens.push(GenToken { id, text: chosen.text.clone(), candidates: here.candidates.clone() });
    let forced = tokens.iter().map(|t| t.id).collect();
    let original = a.branch.as_ref().map_or_else(|| Box::new(a.clone()), |b| b.original.clone());
    let branch = Branch { step, replaced: here.text.clone(), chosen: chosen.text.clone(), original };
    let next = Answer {
        job: Some(job),
        phase: Phase::Waiting,
        prompt: a.prompt.clone(),
        tokens,
        end_probs: a.end_probs.iter().take(step + 1).copied().collect(),
        max_new_tokens: a.max_new_tokens,
        sampling: a.sampling.clone(),
        branch: Some(branch),
        ..Answer::default()
    };
    Some((next, forced))
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
    /// Not wholly cached: waits for the user's click to download `bytes`
    /// (`None`: the hub does not say how much).
    AskFirst { bytes: Option<u64> },
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
    /// The hub commit its files came from.
    pub commit: Option<String>,
    /// The most tokens the model reads (its context window).
    pub context_tokens: u64,
    /// A newer commit its revision names now (the model is from the cache).
    pub newer: Option<String>,
}

impl ModelStatus {
    /// A file's progress (a new row for a file not seen before); `now_ms` is
    /// the clock the speed words use.
    pub fn progress(&mut self, file: String, done: u64, total: Option<u64>, origin: Origin, now_ms: f64) {
        self.phase = LoadPhase::Downloading;
        match self.files.iter_mut().find(|f| f.file == file) {
            Some(f) => {
                (f.done, f.total, f.origin, f.updated_ms) = (done, total, origin, now_ms);
            }
            None => self.files.push(FileProgress { file, done, total, origin, started_ms: now_ms, updated_ms: now_ms }),
        }
    }
}

/// The settings panel: the engine's sampling settings (the tutorial's
/// defaults: greedy, 30 new tokens) plus what only the page has.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub sampling: SamplingSettings,
    pub follow_up_max_new_tokens: usize,
    pub precision: Precision,
    /// The engine's threads where the page may share memory (0: one per core).
    pub threads: usize,
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
    Compare,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Foundation, Tab::Instruct, Tab::Chat, Tab::Prompt, Tab::Compare];
    pub fn id(self) -> &'static str {
        match self {
            Tab::Foundation => "foundation",
            Tab::Instruct => "instruct",
            Tab::Chat => "chat",
            Tab::Prompt => "prompt",
            Tab::Compare => "compare",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Tab::Foundation => "Foundation",
            Tab::Instruct => "Instruct",
            Tab::Chat => "Chat",
            Tab::Prompt => "Prompt",
            Tab::Compare => "Compare",
        }
    }
}

/// The instruct answer as the foundation model rates it (what fine-tuning
/// changed): asked once the instruct answer has ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shift {
    /// The instruct answer (job) it rates, and the scoring job.
    pub for_job: Option<u64>,
    pub job: Option<u64>,
    pub scores: Option<Vec<crate::protocol::TokenScore>>,
    pub failed: Option<String>,
}

/// Shares of an answer's tokens the base model ranks first, in its top 3,
/// or lower: (same, top 3, shifted), each 0..=1.
pub fn shift_shares(scores: &[crate::protocol::TokenScore]) -> (f32, f32, f32) {
    let n = scores.len().max(1) as f32;
    let count = |f: &dyn Fn(u32) -> bool| scores.iter().filter(|s| f(s.rank)).count() as f32 / n;
    (count(&|r| r == 1), count(&|r| (2..=3).contains(&r)), count(&|r| r > 3))
}

/// The Compare tab's two answers of its own (the other two cells are the
/// Foundation and Instruct answers): the instruct weights on the raw
/// question, the foundation weights on the templated prompt.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    pub instruct_raw: Answer,
    pub foundation_templated: Answer,
    /// The instruct answer (job) they were asked for.
    pub for_job: Option<u64>,
}

/// How long the worker may stay silent before the page takes it for hung,
/// and the model then at work; None while nothing runs. A busy answer on a
/// ready model gets `base_ms`, plus 200 ms a prompt token while it reads its
/// prompt (one long silent step); a model being prepared (read into weights,
/// its template compiled, a warm-up pass: long silent work) gets ten times
/// `base_ms`; one being fetched (its reads post progress every few MB, a
/// 429 wait says so first) four times: a cache read or a request that never
/// settles would otherwise leave it "downloading" forever.
pub fn allowed_silence(answers: &[(&Answer, &ModelStatus)], models: &[&ModelStatus], base_ms: f64) -> Option<(String, f64)> {
    let loading = models.iter().filter_map(|m| match m.phase {
        LoadPhase::Preparing => Some((m.spec.clone(), 10.0 * base_ms)),
        LoadPhase::Downloading => Some((m.spec.clone(), 4.0 * base_ms)),
        _ => None,
    });
    let answering = answers.iter().filter(|(a, m)| a.phase.busy() && matches!(m.phase, LoadPhase::Ready { .. })).map(|(a, m)| {
        let reading = if a.phase == Phase::Reading { a.prompt_tokens.len() as f64 * 200.0 } else { 0.0 };
        (m.spec.clone(), base_ms + reading)
    });
    loading.chain(answering).max_by(|x, y| x.1.total_cmp(&y.1))
}

/// The chat's conversation for its next turn: the system prompt, every ended
/// turn (with its reply as the worker decoded it), then `new_user`. A turn
/// that failed is left out: the model never answered it.
pub fn conversation(system: &str, turns: &[ChatTurn], new_user: &str) -> Conversation {
    let mut c = Conversation::new(Some(system.to_string()));
    for t in turns.iter().filter(|t| matches!(t.answer.phase, Phase::Done(_) | Phase::Stopped)) {
        c.user(&t.user);
        c.assistant(&t.answer.reply);
    }
    c.user(new_user);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Message;

    #[test]
    fn silence_is_a_hang_while_an_answer_runs_on_a_ready_model_or_a_model_loads() {
        let ready = ModelStatus { spec: "a/b".into(), phase: LoadPhase::Ready { weight_bytes: 1, load_ms: 1.0 }, ..ModelStatus::default() };
        let loading = ModelStatus { spec: "a/b".into(), phase: LoadPhase::Downloading, ..ModelStatus::default() };
        let answer = |phase: Phase, prompt: usize| Answer { phase, prompt_tokens: vec![PromptToken { id: 1, piece: "x".into(), special: false }; prompt], ..Answer::default() };
        let (idle, waiting, reading, streaming) = (answer(Phase::Done(StopReason::EndOfText), 0), answer(Phase::Waiting, 0), answer(Phase::Reading, 50), answer(Phase::Streaming, 50));
        let preparing = ModelStatus { spec: "c/d".into(), phase: LoadPhase::Preparing, ..ModelStatus::default() };
        assert_eq!(allowed_silence(&[(&idle, &ready)], &[&ready], 30_000.0), None);
        assert_eq!(allowed_silence(&[(&waiting, &loading)], &[&loading], 30_000.0), Some(("a/b".into(), 120_000.0)), "a fetch that never settles is bounded");
        assert_eq!(allowed_silence(&[(&waiting, &ready)], &[&ready], 30_000.0), Some(("a/b".into(), 30_000.0)));
        assert_eq!(allowed_silence(&[(&streaming, &ready)], &[&ready], 5_000.0), Some(("a/b".into(), 5_000.0)));
        assert_eq!(allowed_silence(&[(&waiting, &ready), (&reading, &ready)], &[&ready], 5_000.0), Some(("a/b".into(), 15_000.0)));
        assert_eq!(allowed_silence(&[(&idle, &ready)], &[&preparing], 5_000.0), Some(("c/d".into(), 50_000.0)), "a load is bounded too");
        assert_eq!(allowed_silence(&[(&waiting, &ready)], &[&ready, &preparing], 5_000.0), Some(("c/d".into(), 50_000.0)));
    }

    #[test]
    fn a_branch_keeps_the_steps_before_it_and_leads_back_to_the_first_answer() {
        let cand = |id: u32, text: &str| Candidate { id, text: text.into(), logit: 0.0, prob: 0.5 };
        let tok = |id: u32, text: &str, other: u32| GenToken { id, text: text.into(), candidates: vec![cand(id, text), cand(other, "x")] };
        let a = Answer {
            job: Some(4),
            phase: Phase::Done(StopReason::EndOfText),
            prompt: "Q".into(),
            tokens: vec![tok(10, "The", 11), tok(20, " capital", 21)],
            end_step: Some(tok(2, "<|im_end|>", 30)),
            end_probs: vec![0.1, 0.2, 0.9],
            max_new_tokens: 8,
            sampling: Some(SamplingSettings::greedy(8)),
            ..Answer::default()
        };
        let (b, forced) = branch_answer(&a, 1, 21, 9).unwrap();
        assert_eq!(forced, vec![10, 21]);
        assert_eq!((b.job, &b.phase, b.prompt.as_str(), b.end_probs.as_slice()), (Some(9), &Phase::Waiting, "Q", &[0.1, 0.2][..]));
        assert_eq!(b.tokens[1].candidates, a.tokens[1].candidates, "what the model weighed at the step is the same");
        let info = b.branch.clone().unwrap();
        assert_eq!((info.step, info.replaced.as_str(), info.chosen.as_str(), *info.original == a), (1, " capital", "x", true));
        // At the step that ended it: the answer goes on instead of stopping.
        let (_, forced) = branch_answer(&a, 2, 30, 10).unwrap();
        assert_eq!(forced, vec![10, 20, 30]);
        // A branch of a branch still leads back to the first answer.
        let done = Answer { phase: Phase::Done(StopReason::MaxNewTokens), ..b.clone() };
        let (c, _) = branch_answer(&done, 0, 11, 11).unwrap();
        assert_eq!(*c.branch.unwrap().original, a);
        // Not the token already there, not a step or token it lacks, not while it is written.
        assert!(branch_answer(&a, 1, 20, 12).is_none());
        assert!(branch_answer(&a, 5, 11, 12).is_none());
        assert!(branch_answer(&a, 0, 999, 12).is_none());
        assert!(branch_answer(&b, 0, 11, 12).is_none(), "b is still waiting");
    }

    #[test]
    fn the_chat_keeps_ended_turns_only() {
        let turn = |user: &str, phase: Phase, reply: &str| ChatTurn { user: user.into(), answer: Answer { phase, reply: reply.into(), ..Answer::default() } };
        let turns = [
            turn("Hi", Phase::Done(StopReason::EndOfText), "Hello!"),
            turn("Oops", Phase::Failed("crashed".into()), ""),
            turn("More", Phase::Stopped, "Sure, here"),
        ];
        let c = conversation("  ", &turns, "Bye");
        assert_eq!(c.system, None);
        assert_eq!(
            c.messages(),
            vec![Message::user("Hi"), Message::assistant("Hello!"), Message::user("More"), Message::assistant("Sure, here"), Message::user("Bye")]
        );
        assert_eq!(conversation("Be brief.", &[], "Q").messages(), vec![Message::system("Be brief."), Message::user("Q")]);
    }
}
