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
                <span class="hint">"Ctrl+Enter asks too."</span>
            </div>
        </section>
    }
}
