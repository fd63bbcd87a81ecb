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
    // Which chat turn's prompt to show (None: the latest). Each turn's prompt
    // is the whole conversation up to it, as the model read it.
    let turn = RwSignal::new(None::<usize>);
    let chat_prompt = Signal::derive(move || {
        s.chat.with(|c| turn.get().and_then(|i| c.get(i)).or(c.last()).map(|t| t.answer.clone()).unwrap_or_default())
    });
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
        <h2>"Chat prompt"</h2>
        <p class="small">
            <label for="prompt-turn">"The whole conversation the model read for turn "</label>
            <select
                id="prompt-turn"
                data-testid="prompt-turn"
                on:change=move |ev| turn.set(event_target_value(&ev).parse::<usize>().ok())
            >
                <option value="" selected=move || turn.get().is_none()>"latest"</option>
                {move || {
                    (0..s.chat.with(|c| c.len()))
                        .map(|i| view! { <option value=i.to_string() selected=move || turn.get() == Some(i)>{(i + 1).to_string()}</option> })
                        .collect_view()
                }}
            </select>
        </p>
        <PromptView answer=chat_prompt show_tokens=show_tokens testid="prompt-chat"/>
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
