//! What fine-tuning changed: the instruct answer as the foundation model
//! rates it, token by token (the URIAL finding, Lin et al. 2023, arXiv
//! 2312.01552: alignment shifts few tokens, mostly style and the stop).
//! Once the instruct answer has ended, the foundation weights read the same
//! templated prompt and that answer in one batched pass (teacher forcing, no
//! generation: `LanguageModel::score`); each token is coloured by the rank
//! the base model gives it.

use leptos::prelude::*;

use super::state;
use crate::app::bridge;
use crate::app::signals::AppState;
use crate::app::state::{shift_shares, LoadPhase, Phase, Shift};
use crate::app::text::percent;
use crate::protocol::{Ask, Prompt, SamplingSettings, Slot, ToWorker};

/// Asks the foundation model to rate the ended instruct answer, once per answer.
fn rate_instruct(s: AppState) {
    let a = s.instruct.get_untracked();
    let (Some(job), Phase::Done(_)) = (a.job, &a.phase) else { return };
    let ready = s.foundation_model.with_untracked(|m| matches!(m.phase, LoadPhase::Ready { .. }));
    if !ready || s.shift.with_untracked(|x| x.for_job == Some(job)) || a.prompt.is_empty() {
        return;
    }
    // Every id the instruct model picked, its end-of-text included.
    let ids = a.generated_ids.clone();
    if ids.is_empty() {
        return;
    }
    let score = s.job_id();
    s.shift.set(Shift { for_job: Some(job), job: Some(score), ..Shift::default() });
    // The exact string the instruct model read, template included.
    let ask = Ask { slot: Some(Slot::Foundation), score: Some(ids), ..Ask::new(score, Prompt::Raw(a.prompt), SamplingSettings::greedy(1)) };
    bridge::send(&ToWorker::Ask(ask));
}

#[component]
pub(super) fn ShiftView() -> impl IntoView {
    let s = state();
    Effect::new(move |_| {
        let ended = s.instruct.with(|a| matches!(a.phase, Phase::Done(_)));
        let ready = s.foundation_model.with(|m| matches!(m.phase, LoadPhase::Ready { .. }));
        if ended && ready {
            rate_instruct(s);
        }
    });
    move || {
        let shift = s.shift.get();
        let job = s.instruct.with(|a| a.job);
        if shift.for_job != job || job.is_none() {
            return None;
        }
        if let Some(why) = shift.failed {
            return Some(view! { <p class="muted" data-testid="shift">{format!("The foundation model could not rate this answer: {why}")}</p> }.into_any());
        }
        let Some(scores) = shift.scores else {
            return Some(view! { <p class="muted" data-testid="shift">"The foundation model is reading this answer…"</p> }.into_any());
        };
        let texts: Vec<String> = s.instruct.with(|a| a.tokens.iter().map(|t| t.text.clone()).collect());
        let (same, top3, shifted) = shift_shares(&scores);
        let spans = scores
            .iter()
            .enumerate()
            .map(|(i, sc)| {
                let class = match sc.rank {
                    1 => "tok same",
                    2..=3 => "tok top3",
                    _ => "tok shifted",
                };
                let text = texts.get(i).cloned().unwrap_or_else(|| "⟨end⟩".to_string());
                let title = format!("base model: rank {}, {}", sc.rank, percent(sc.prob));
                view! { <span class=class title=title data-rank=sc.rank.to_string()>{text}</span> }
            })
            .collect_view();
        Some(
            view! {
                <div class="shift" data-testid="shift">
                    <h2>"What fine-tuning changed"</h2>
                    <p class="small">
                        "The foundation model read the same prompt and this answer, token by token. "
                        <span class="tok same">"Its own pick"</span> ", " <span class="tok top3">"in its top 3"</span> ", "
                        <span class="tok shifted">"shifted by fine-tuning"</span> " (hover a token for its rank and probability)."
                    </p>
                    <p class="shift-tokens" data-testid="shift-tokens">{spans}</p>
                    <p class="small" data-testid="shift-shares">
                        {format!(
                            "{:.0} % of this answer is what the base model would have written anyway; {:.0} % is in its top 3; {:.0} % was shifted by fine-tuning.",
                            same * 100.0,
                            top3 * 100.0,
                            shifted * 100.0
                        )}
                    </p>
                </div>
            }
            .into_any(),
        )
    }
}
