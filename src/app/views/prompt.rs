//! The Prompt tab: the exact string each model reads, special tokens
//! marked, or its token pieces with their ids.

use leptos::prelude::*;

use super::state;
use crate::app::state::Answer;
use crate::app::text::split_special;

#[component]
pub(super) fn PromptPanel() -> impl IntoView {
    let s = state();
    let show_tokens = RwSignal::new(false);
    let instruct: Signal<Answer> = s.instruct.into();
    let last_chat = Signal::derive(move || s.chat.with(|c| c.last().map(|t| t.answer.clone()).unwrap_or_default()));
    view! {
        <p class="explain">
            "This is exactly the string the instruct and chat model receive. The highlighted control tokens such as "
            <code>"<|im_start|>"</code>
            " are single tokens the template adds; you never type them. The foundation model gets only your raw question."
        </p>
        <label class="toggle">
            <input type="checkbox" data-testid="toggle-tokens" prop:checked=move || show_tokens.get() on:change=move |ev| show_tokens.set(event_target_checked(&ev))/>
            " Show the token pieces with their ids"
        </label>
        <h2>"Instruct prompt"</h2>
        <PromptView answer=instruct show_tokens=show_tokens testid="prompt-instruct"/>
        <h2>"Chat prompt (latest turn)"</h2>
        <PromptView answer=last_chat show_tokens=show_tokens testid="prompt-chat"/>
    }
}

#[component]
fn PromptView(answer: Signal<Answer>, show_tokens: RwSignal<bool>, testid: &'static str) -> impl IntoView {
    view! {
        <div data-testid=testid>
            {move || {
                answer.with(|a| {
                    if a.prompt.is_empty() {
                        return view! { <p class="muted">"Press Ask to see the prompt."</p> }.into_any();
                    }
                    if show_tokens.get() {
                        let n = a.prompt_tokens.len();
                        return view! {
                            <p class="small">{format!("{n} tokens")}</p>
                            <div class="pieces" data-testid="token-pieces">
                                {a.prompt_tokens
                                    .iter()
                                    .map(|t| {
                                        view! {
                                            <span class="piece" class:special=t.special>
                                                <span class="piece-text">{t.piece.replace('\n', "↵")}</span>
                                                <sub>{t.id}</sub>
                                            </span>
                                        }
                                    })
                                    .collect_view()}
                            </div>
                        }
                            .into_any();
                    }
                    let mut specials: Vec<String> = a.prompt_tokens.iter().filter(|t| t.special).map(|t| t.piece.clone()).collect();
                    specials.sort();
                    specials.dedup();
                    view! {
                        <pre class="prompt">
                            {split_special(&a.prompt, &specials)
                                .into_iter()
                                .map(|seg| {
                                    if seg.special {
                                        view! { <mark class="special">{seg.text}</mark> }.into_any()
                                    } else {
                                        view! { <span>{seg.text}</span> }.into_any()
                                    }
                                })
                                .collect_view()}
                        </pre>
                    }
                        .into_any()
                })
            }}
        </div>
    }
}
