//! The Compare tab: foundation and instruct weights, each on the raw question
//! and on the templated prompt, side by side (2×2). Two cells are the
//! Foundation and Instruct answers already written; the other two run when
//! this tab is open and the instruct answer has ended (never as part of a
//! plain Ask, so Ask stays as fast as it was).

use leptos::prelude::*;

use super::answers::AnswerBody;
use super::state;
use crate::app::bridge;
use crate::app::signals::AppState;
use crate::app::state::{Answer, Grid, LoadPhase, Phase, Tab};
use crate::protocol::{Ask, Prompt, Slot, ToWorker};

/// Asks the two answers of the grid's own, once per instruct answer: the
/// instruct weights get the foundation's raw question, the foundation
/// weights the exact string the instruct model read (its template
/// included), both greedy.
fn fill_grid(s: AppState) {
    let (question, instruct) = (s.foundation.with_untracked(|a| a.prompt.clone()), s.instruct.get_untracked());
    // A branch of the instruct answer keeps the grid of the answer it came from.
    let root = instruct.branch.as_ref().map_or(instruct.job, |b| b.original.job);
    let (Some(job), Phase::Done(_)) = (root, &instruct.phase) else { return };
    if s.grid.with_untracked(|g| g.for_job == Some(job)) || question.is_empty() {
        return;
    }
    let settings = s.settings.get_untracked();
    let max = settings.sampling.max_new_tokens;
    let greedy = crate::protocol::SamplingSettings { do_sample: false, ..settings.sampling(max, 0) };
    let (raw, templated) = (s.job_id(), s.job_id());
    s.grid.set(Grid { instruct_raw: Answer::waiting(raw, max), foundation_templated: Answer::waiting(templated, max), for_job: Some(job) });
    bridge::send(&ToWorker::Ask(Ask { slot: Some(Slot::Instruct), ..Ask::new(raw, Prompt::Raw(question), greedy.clone()) }));
    let no_foundation = s.foundation_model.with_untracked(|m| matches!(m.phase, LoadPhase::None));
    if no_foundation {
        s.grid.update(|g| g.foundation_templated.phase = Phase::Failed("No foundation model is set, so this cell has no answer.".into()));
    } else {
        bridge::send(&ToWorker::Ask(Ask { slot: Some(Slot::Foundation), ..Ask::new(templated, Prompt::Raw(instruct.prompt), greedy) }));
    }
}

#[component]
pub(super) fn ComparePanel() -> impl IntoView {
    let s = state();
    // Runs when the tab is opened, and when an answer ends while it is open.
    Effect::new(move |_| {
        if s.tab.get() == Tab::Compare && s.instruct.with(|a| matches!(a.phase, Phase::Done(_))) {
            fill_grid(s);
        }
    });
    let raw_on_instruct: Signal<Answer> = Signal::derive(move || s.grid.with(|g| g.instruct_raw.clone()));
    let template_on_foundation: Signal<Answer> = Signal::derive(move || s.grid.with(|g| g.foundation_templated.clone()));
    view! {
        <p class="explain">
            "The template is part of how you talk to a model. Each model, on each kind of prompt: the instruct weights given "
            "the raw question usually end at once (they learned to answer only inside the template), and the foundation "
            "weights given the template see control tokens they were never trained to use. The two cells on the diagonal "
            "are the Foundation and Instruct answers; the other two are written when you open this tab."
        </p>
        <div class="grid2x2" role="table" aria-label="Two models, two prompts">
            <div role="row" class="grid-head">
                <span role="columnheader">"Model ↓, prompt →"</span>
                <span role="columnheader">"Raw question"</span>
                <span role="columnheader">"Templated prompt"</span>
            </div>
            <div role="row">
                <span role="rowheader">"Foundation weights"</span>
                <Cell testid="cell-foundation-raw" label="Foundation weights × raw question (the Foundation tab)" answer=s.foundation.into()/>
                <Cell testid="cell-foundation-templated" label="Foundation weights × templated prompt" answer=template_on_foundation/>
            </div>
            <div role="row">
                <span role="rowheader">"Instruct weights"</span>
                <Cell testid="cell-instruct-raw" label="Instruct weights × raw question" answer=raw_on_instruct/>
                <Cell testid="cell-instruct-templated" label="Instruct weights × templated prompt (the Instruct tab)" answer=s.instruct.into()/>
            </div>
        </div>
        {move || s.instruct.with(|a| a.job.is_none()).then(|| view! { <p class="muted">"Press Ask first: the grid starts from its answers."</p> })}
    }
}

#[component]
fn Cell(testid: &'static str, label: &'static str, answer: Signal<Answer>) -> impl IntoView {
    view! {
        <div role="cell" class="grid-cell" data-testid=testid>
            <p class="small cell-label">{label}</p>
            <AnswerBody answer=answer/>
        </div>
    }
}
