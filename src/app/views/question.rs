//! The question box: the question, example questions, Ask and Stop.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use super::state;
use crate::app::bridge;
use crate::app::text::PRESETS;

#[component]
pub(super) fn QuestionBox() -> impl IntoView {
    let s = state();
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            bridge::ask(s);
        }
    };
    view! {
        <section class="ask" aria-label="Question">
            <label for="question">"Your question"</label>
            <textarea
                id="question"
                data-testid="question"
                rows="2"
                prop:value=move || s.question.get()
                on:input=move |ev| s.question.set(event_target_value(&ev))
                on:keydown=on_key
            ></textarea>
            <div class="presets" role="group" aria-label="Example questions">
                {PRESETS
                    .iter()
                    .map(|p| {
                        let p = *p;
                        view! { <button class="chip" on:click=move |_| s.question.set(p.to_string())>{p}</button> }
                    })
                    .collect_view()}
            </div>
            <div class="actions">
                <button class="primary" data-testid="ask" on:click=move |_| bridge::ask(s)>"Ask"</button>
                <button data-testid="stop" on:click=move |_| bridge::stop() disabled=move || !s.any_busy()>"Stop"</button>
                <button data-testid="copy-link" on:click=move |_| bridge::copy_link(s)>"Copy link"</button>
                <span class="hint">"Ctrl+Enter asks too."</span>
            </div>
            {move || {
                s.share_link.get().map(|(url, copied)| {
                    view! {
                        <p class="share small">
                            <label for="share-link">
                                {if copied { "Copied. This link opens the page with the same question, models and settings, and the chat's follow-ups:" } else { "Copy this link (the browser did not let the page use the clipboard); it opens the page with the same question, models and settings, and the chat's follow-ups:" }}
                            </label>
                            <input id="share-link" data-testid="share-link" type="text" readonly prop:value=url/>
                        </p>
                    }
                })
            }}
        </section>
    }
}
