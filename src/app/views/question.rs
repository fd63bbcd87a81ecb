//! The question box: the question, example questions, Ask, Stop, and Copy
//! link (a link that reproduces the page, `link::share_query`).

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use super::state;
use crate::app::asking;
use crate::app::signals::AppState;
use crate::app::text::PRESETS;

#[component]
pub(super) fn QuestionBox() -> impl IntoView {
    let s = state();
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            asking::ask(s);
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
                <button class="primary" data-testid="ask" on:click=move |_| asking::ask(s)>"Ask"</button>
                <button data-testid="stop" on:click=move |_| asking::stop() disabled=move || !s.any_busy()>"Stop"</button>
                <button data-testid="copy-link" on:click=move |_| copy_link(s)>"Copy link"</button>
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

/// The link that reproduces the page as it is now (`link::share_query`).
pub(super) fn page_link(state: AppState) -> Option<String> {
    let location = web_sys::window()?.location();
    let base = format!("{}{}", location.origin().unwrap_or_default(), location.pathname().unwrap_or_default());
    let config = state.config.get_value();
    let settings = state.settings.get_untracked();
    let asked: Vec<String> = state.chat.with_untracked(|c| c.iter().skip(1).map(|t| t.user.clone()).collect());
    let follow_ups = if state.chat.with_untracked(|c| c.is_empty()) { config.follow_ups.clone() } else { asked };
    let shared = crate::app::link::Shared {
        config: &config,
        question: &state.question.get_untracked(),
        precision: settings.precision,
        sampling: &settings.sampling,
        follow_up_max_new_tokens: settings.follow_up_max_new_tokens,
        system: &state.system_prompt.get_untracked(),
        follow_ups: &follow_ups,
    };
    Some(format!("{base}?{}", crate::app::link::share_query(&shared)))
}

/// The models or their precision changed: the address bar says so (a
/// reload, a bookmark or a copied address gives the same page).
pub(super) fn update_address(state: AppState) {
    let (Some(url), Some(history)) = (page_link(state), web_sys::window().and_then(|w| w.history().ok())) else { return };
    let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
}

/// A link that reproduces the page, shown and put on the clipboard when
/// the browser allows it.
fn copy_link(state: AppState) {
    let Some(window) = web_sys::window() else { return };
    let Some(url) = page_link(state) else { return };
    state.share_link.set(Some((url.clone(), false)));
    let copied = window.navigator().clipboard().write_text(&url);
    wasm_bindgen_futures::spawn_local(async move {
        if wasm_bindgen_futures::JsFuture::from(copied).await.is_ok() {
            state.share_link.set(Some((url, true)));
        }
    });
}
