//! The candidates view: at every step of an answer, the tokens the model
//! weighed and their probabilities. Choosing another one branches the answer
//! there (`state::branch_answer`): the worker re-uses its KV cache up to that
//! step, forces the chosen token and goes on with the answer's own settings
//! (`LanguageModel::start_branch`). A banner names the branch and leads back
//! to the original answer.

use leptos::prelude::*;

use super::state;
use crate::app::{asking, bridge};
use crate::app::signals::AppState;
use crate::app::state::{branch_answer, step_candidates, Answer};
use crate::protocol::{Ask, Candidate, Prompt, Slot, ToWorker};

/// Branches `answer` at `step` with candidate `id` (a new job replaces it).
fn branch(s: AppState, answer: RwSignal<Answer>, slot: Slot, step: usize, id: u32) {
    let job = s.job_id();
    let Some((next, forced)) = answer.with_untracked(|a| branch_answer(a, step, id, job)) else { return };
    let Some(settings) = next.sampling.clone() else { return };
    // The exact string the answer was written for (for Instruct: templated).
    let ask = Ask { slot: Some(slot), force: forced, ..Ask::new(job, Prompt::Raw(next.prompt.clone()), settings) };
    answer.set(next);
    bridge::send(&ToWorker::Ask(ask));
}

/// Above a branched answer: where it left the original, and the way back.
#[component]
pub(super) fn BranchBanner(answer: RwSignal<Answer>) -> impl IntoView {
    let back = move |_| {
        if answer.with_untracked(|a| a.phase.busy()) {
            asking::stop();
        }
        if let Some(b) = answer.with_untracked(|a| a.branch.clone()) {
            answer.set(*b.original);
        }
    };
    move || {
        answer.with(|a| a.branch.clone()).map(|b| {
            view! {
                <p class="branch" role="status" data-testid="branch-banner" data-step=b.step.to_string()>
                    {format!(
                        "A branch: at token {} this answer takes {:?} instead of {:?}, and the model goes on from there. ",
                        b.step + 1,
                        b.chosen,
                        b.replaced
                    )}
                    <button class="link" data-testid="branch-back" on:click=back>"Back to the original answer"</button>
                </p>
            }
        })
    }
}

/// The toggle and, when on, one row a step: the token written there and
/// what the model weighed; every other candidate is a button that branches.
/// (`which`, not `slot`: Leptos's view macro reserves `slot`.)
#[component]
pub(super) fn Candidates(answer: RwSignal<Answer>, which: Slot) -> impl IntoView {
    let s = state();
    let show = RwSignal::new(false);
    let busy = move || answer.with(|a| a.phase.busy());
    view! {
        <label class="toggle">
            <input type="checkbox" data-testid="toggle-candidates" prop:checked=move || show.get() on:change=move |ev| show.set(event_target_checked(&ev))/>
            " Show the top candidates for each token (why it wrote this; choose another to branch the answer there)"
        </label>
        {move || {
            show.get().then(|| {
                view! {
                    <ol class="candidates" data-testid="candidates">
                        // Keyed by (answer, step): a new token adds one row,
                        // the others stay; the step that ended it comes last.
                        <For
                            each=move || {
                                let (job, n) = answer.with(|a| (a.job, a.tokens.len() + usize::from(a.end_step.is_some())));
                                (0..n).map(move |i| (job, i)).collect::<Vec<_>>()
                            }
                            key=|step| *step
                            children=move |(_, i)| {
                                let t = answer.with_untracked(|a| step_candidates(a, i).cloned()).unwrap_or_else(|| crate::app::state::GenToken {
                                    id: 0,
                                    text: String::new(),
                                    candidates: vec![],
                                });
                                let picked = t.id;
                                view! {
                                    <li data-testid="candidate-step" data-step=i.to_string()>
                                        <code class="tok">{format!("{:?}", t.text)}</code>
                                        <span class="cands">
                                            {t.candidates
                                                .into_iter()
                                                .map(|c| view! { <BranchChip candidate=c picked=picked step=i busy=Signal::derive(busy) on_pick=move |id| branch(s, answer, which, i, id)/> })
                                                .collect_view()}
                                        </span>
                                    </li>
                                }
                            }
                        />
                    </ol>
                }
            })
        }}
    }
}

/// A candidate: the picked one as text, any other as a button that branches.
#[component]
fn BranchChip(candidate: Candidate, picked: u32, step: usize, busy: Signal<bool>, on_pick: impl Fn(u32) + 'static) -> impl IntoView {
    if candidate.id == picked {
        return view! { <super::answers::CandidateChip candidate=candidate picked=picked/> }.into_any();
    }
    let words = format!("{:?}", candidate.text);
    let prob = format!(" {:.1}%", candidate.prob * 100.0);
    let id = candidate.id;
    // The visible text first (screen readers and voice control name it so).
    let label = format!("{words}{prob}: continue the answer from token {} with this token", step + 1);
    view! {
        <button class="cand" data-token-id=id.to_string() data-testid="branch-choice" aria-label=label.clone() title=label disabled=busy on:click=move |_| on_pick(id)>
            <code>{words}</code>
            {prob}
        </button>
    }
    .into_any()
}
