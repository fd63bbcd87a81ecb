//! The three answer tabs: an answer's body (text, ending, timings), the
//! candidates the model weighed, and the chat with its follow-ups.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use super::candidates::{BranchBanner, Candidates};
use super::state;
use crate::app::asking;
use crate::app::state::{Answer, LoadPhase, Phase};
use crate::app::text;
use crate::protocol::{Candidate, Slot, StopReason};

/// The status, text, ending words and timings of one answer.
#[component]
pub(super) fn AnswerBody(answer: Signal<Answer>, #[prop(optional)] prefix: Option<Signal<String>>) -> impl IntoView {
    let ids = move || answer.with(|a| a.tokens.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(","));
    let phase_attr = move || answer.with(|a| a.phase.name());
    view! {
        <div class="answer" data-testid="answer" data-phase=phase_attr data-token-ids=ids data-job=move || answer.with(|a| a.job.map(|j| j.to_string()))>
            <p class="answer-text">
                {move || prefix.map(|p| view! { <span class="prompt-echo">{move || p.get()}</span> })}
                <span data-testid="answer-text">{move || answer.with(|a| a.text.clone())}</span>
                {move || answer.with(|a| a.phase == Phase::Streaming).then(|| view! { <span class="caret" aria-hidden="true">"▍"</span> })}
            </p>
            {move || answer.with(|a| text::waiting_words(&a.phase)).map(|w| view! { <p class="muted">{w}</p> })}
            {move || {
                answer.with(|a| {
                    text::ending_words(&a.phase, !a.text.trim().is_empty(), a.max_new_tokens)
                        .map(|w| view! { <p class="ending" data-testid="ending">{w}</p> })
                })
            }}
            {move || {
                // Why it ended at once: what the model weighed for that first token.
                answer.with(|a| match (&a.phase, &a.end_step) {
                    (Phase::Done(StopReason::EndOfText), Some(step)) if a.text.trim().is_empty() => {
                        let step = step.clone();
                        Some(view! {
                            <p class="end-candidates" data-testid="end-candidates">
                                "What it weighed for that token: "
                                <span class="cands">
                                    {step.candidates.into_iter().map(|c| view! { <CandidateChip candidate=c picked=step.id/> }).collect_view()}
                                </span>
                            </p>
                        })
                    }
                    _ => None,
                })
            }}
            {move || answer.with(|a| match &a.phase {
                Phase::Failed(e) => Some(view! { <p class="error" role="alert">{e.clone()}</p> }),
                _ => None,
            })}
            {move || answer.with(|a| !a.end_probs.is_empty() && !a.phase.busy()).then(|| view! { <EndMeter answer=answer/> })}
            {move || answer.with(|a| a.timings.as_ref().map(|t| view! { <p class="timings" data-testid="timings">{text::timings_line(t)}</p> }))}
            // For screen readers: the answer once it has ended, not every token as it streams.
            <p class="visually-hidden" aria-live="polite" data-testid="announce">
                {move || answer.with(|a| text::announce_words(&a.phase, &a.text, a.max_new_tokens))}
            </p>
        </div>
    }
}

/// P(end of text) at every step, as a small chart under the answer: one
/// point per token, in order (the last one is the step that stopped, if it
/// did). Each point is reachable by keyboard and names its token and value;
/// the sentence under it says the same for everyone.
#[component]
fn EndMeter(answer: Signal<Answer>) -> impl IntoView {
    const STEP: f32 = 12.0;
    const HEIGHT: f32 = 40.0;
    let focused = RwSignal::new(None::<usize>);
    let points = move || {
        answer.with(|a| {
            let ended = a.phase == Phase::Done(StopReason::EndOfText);
            a.end_probs
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let token = match a.tokens.get(i) {
                        Some(t) => format!("{:?}", t.text),
                        None if ended => a.end_step.as_ref().map_or("end of text".to_string(), |t| format!("{:?}", t.text)),
                        None => "?".to_string(),
                    };
                    (i, p, token)
                })
                .collect::<Vec<_>>()
        })
    };
    let width = move || answer.with(|a| (a.end_probs.len() as f32 * STEP).max(STEP));
    let y = |p: f32| HEIGHT - 2.0 - p.clamp(0.0, 1.0) * (HEIGHT - 4.0);
    let line = move || points().iter().map(|(i, p, _)| format!("{},{}", *i as f32 * STEP + STEP / 2.0, y(*p))).collect::<Vec<_>>().join(" ");
    let values = move || answer.with(|a| a.end_probs.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","));
    let words = move || answer.with(|a| text::end_meter_words(&a.end_probs, a.phase == Phase::Done(StopReason::EndOfText)));
    let readout = move || {
        focused.get().and_then(|i| points().into_iter().nth(i)).map(|(i, p, token)| format!("Token {} {token}: end of text {}", i + 1, text::percent(p)))
    };
    view! {
        <figure class="end-meter" data-testid="end-meter" data-probs=values>
            <svg
                viewBox=move || format!("0 0 {} {HEIGHT}", width())
                width=move || width().min(600.0).to_string()
                height=HEIGHT.to_string()
                preserveAspectRatio="none"
                aria-hidden="false"
            >
                <line class="axis" x1="0" x2=width y1=y(0.0) y2=y(0.0)></line>
                <line class="axis half" x1="0" x2=width y1=y(0.5) y2=y(0.5)></line>
                <polyline class="meter-line" points=line></polyline>
                {move || {
                    points()
                        .into_iter()
                        .map(|(i, p, token)| {
                            let label = format!("Token {} {token}: end of text {}", i + 1, text::percent(p));
                            let title = label.clone();
                            view! {
                                <g
                                    class="meter-point"
                                    tabindex="0"
                                    role="img"
                                    aria-label=label
                                    on:focus=move |_| focused.set(Some(i))
                                    on:mouseenter=move |_| focused.set(Some(i))
                                    on:blur=move |_| focused.set(None)
                                >
                                    <title>{title}</title>
                                    <circle cx=(i as f32 * STEP + STEP / 2.0).to_string() cy=y(p).to_string() r="3"></circle>
                                </g>
                            }
                        })
                        .collect_view()
                }}
            </svg>
            <figcaption class="small" data-testid="end-meter-words">
                {words}
                {move || readout().map(|r| view! { " " <span class="meter-readout" data-testid="end-meter-readout">{r}</span> })}
            </figcaption>
        </figure>
    }
}

/// Under the chat: how much of the model's context window the conversation
/// fills, and what the latest turn re-used from the KV cache.
#[component]
fn ContextMeter() -> impl IntoView {
    let s = state();
    let latest = move || s.chat.with(|c| c.iter().rev().find_map(|t| t.answer.timings.clone()));
    let context = move || s.instruct_model.with(|m| m.context_tokens);
    move || {
        latest().map(|t| {
            let used = t.prompt_tokens + t.generated_tokens;
            view! {
                <div class="context-meter" data-testid="context-meter">
                    <meter
                        min="0"
                        max=context().max(1).to_string()
                        value=used.to_string()
                        aria-label="Context window used"
                        data-reused=t.reused_tokens.to_string()
                        data-new=(t.prompt_tokens - t.reused_tokens.min(t.prompt_tokens)).to_string()
                        data-generated=t.generated_tokens.to_string()
                    ></meter>
                    <p class="small" data-testid="context-words">{text::chat_context_words(&t, context())}</p>
                </div>
            }
        })
    }
}

/// One candidate token and its probability, as text: the piece quoted and
/// escaped (`"\n"`, `"<|im_end|>"`), so newlines and special tokens show.
#[component]
pub(super) fn CandidateChip(candidate: Candidate, picked: u32) -> impl IntoView {
    view! {
        <span class="cand" class:chosen=candidate.id == picked data-token-id=candidate.id.to_string()>
            <code>{format!("{:?}", candidate.text)}</code>
            {format!(" {:.1}%", candidate.prob * 100.0)}
        </span>
    }
}

#[component]
pub(super) fn FoundationPanel() -> impl IntoView {
    let s = state();
    let answer: Signal<Answer> = s.foundation.into();
    let prefix = Signal::derive(move || s.foundation.with(|a| if a.job.is_some() { a.prompt.clone() } else { String::new() }));
    let model_problem = move || {
        s.foundation_model.with(|m| match &m.phase {
            LoadPhase::None => Some("No foundation model is set, so this tab has no answer; the other tabs still work.".to_string()),
            LoadPhase::Failed(e) => Some(format!("The foundation model could not be loaded, so this tab has no answer (the other tabs still work): {e}")),
            _ => None,
        })
    };
    view! {
        <p class="explain">
            "A foundation (base) model was only ever trained to continue text. It gets your question as a raw string, "
            "with no special tokens, and writes what usually comes next on the internet: often more questions, not an answer. "
            "The grey text is the prompt; the rest is the model's."
        </p>
        {move || model_problem().map(|p| view! { <p class="error" role="alert" data-testid="foundation-problem">{p}</p> })}
        <BranchBanner answer=s.foundation/>
        <AnswerBody answer=answer prefix=prefix/>
        <Candidates answer=s.foundation which=Slot::Foundation/>
    }
}

#[component]
pub(super) fn InstructPanel() -> impl IntoView {
    let s = state();
    view! {
        <p class="explain">
            "An instruct model is the same base model fine-tuned on request → response pairs. It only behaves when the "
            "question is wrapped in the chat template it was trained on (see the Prompt tab); then it answers and stops."
        </p>
        <BranchBanner answer=s.instruct/>
        <AnswerBody answer=s.instruct.into()/>
        <Candidates answer=s.instruct which=Slot::Instruct/>
        <super::shift::ShiftView/>
    }
}

#[component]
pub(super) fn ChatPanel() -> impl IntoView {
    let s = state();
    let busy = move || s.chat.with(|c| c.iter().any(|t| t.answer.phase.busy()));
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            if !busy() {
                asking::follow_up(s);
            }
        }
    };
    view! {
        <p class="explain">
            "A chat model is usually the very same instruct weights, driven with a growing list of role-tagged messages. "
            "Every turn sends the whole history, so a vague follow-up (\"there\") is understood. "
            "The worker re-uses what it already computed for the earlier turns (its KV cache)."
        </p>
        <details class="system">
            <summary>"System prompt"</summary>
            <textarea
                data-testid="system-prompt"
                rows="2"
                placeholder="Empty: the template's own default (for SmolLM2: “You are a helpful AI assistant named SmolLM, trained by Hugging Face”)."
                prop:value=move || s.system_prompt.get()
                on:input=move |ev| s.system_prompt.set(event_target_value(&ev))
            ></textarea>
        </details>
        <ol class="bubbles" data-testid="chat">
            // Keyed by job: a streamed token updates its own bubble only.
            <For
                each=move || s.chat.with(|c| c.iter().filter_map(|t| Some((t.answer.job?, t.user.clone()))).collect::<Vec<_>>())
                key=|(job, _)| *job
                children=move |(job, user)| {
                    let answer = Memo::new(move |_| {
                        s.chat.with(|c| c.iter().find(|t| t.answer.job == Some(job)).map(|t| t.answer.clone()).unwrap_or_default())
                    });
                    view! {
                        <li class="bubble user" data-testid="chat-user">{user}</li>
                        <li class="bubble assistant" data-testid="chat-assistant">
                            <AnswerBody answer=answer.into()/>
                        </li>
                    }
                }
            />
        </ol>
        {move || s.chat.with(|c| c.is_empty()).then(|| view! { <p class="muted">"Press Ask to start the conversation."</p> })}
        <ContextMeter/>
        <div class="follow-up">
            <label for="follow-up">"Follow-up"</label>
            <input
                id="follow-up"
                data-testid="follow-up"
                type="text"
                prop:value=move || s.follow_up.get()
                on:input=move |ev| s.follow_up.set(event_target_value(&ev))
                on:keydown=on_key
            />
            <button
                class="primary"
                data-testid="send-follow-up"
                disabled=move || busy() || s.chat.with(|c| c.is_empty())
                on:click=move |_| asking::follow_up(s)
            >
                "Send"
            </button>
            <button data-testid="reset-chat" on:click=move |_| asking::reset_chat(s)>"Reset"</button>
        </div>
    }
}
