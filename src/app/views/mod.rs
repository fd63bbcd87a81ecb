//! The components, top to bottom as the page shows them: header and model
//! status ([`models`], [`storage`]), the question box ([`question`]),
//! settings ([`settings`]), the four tabs ([`answers`], [`prompt`]).
//! Model output and templates are untrusted: always text nodes, never HTML.

mod answers;
mod candidates;
mod compare;
mod models;
mod picker;
mod prompt;
mod question;
mod settings;
mod shift;
mod storage;

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use super::bridge;
use super::signals::AppState;
use super::state::Tab;
use super::link::page_config;

fn state() -> AppState {
    expect_context::<AppState>()
}

fn query_pairs() -> Vec<(String, String)> {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else { return vec![] };
    // Every pair, in order (`follow` repeats; unknown keys are named by `page_config`).
    js_sys::Array::from(&params.into())
        .iter()
        .filter_map(|pair| {
            let pair: js_sys::Array = pair.into();
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect()
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new(page_config(&query_pairs()));
    provide_context(state);
    bridge::start(state);
    view! {
        <header class="top">
            <h1>"One question, three answers"</h1>
            <p class="lede">
                "The same small model family (SmolLM2-135M) asked the same question three ways, "
                "running on your own computer inside this page. Nothing you type leaves your browser."
            </p>
        </header>
        <main>
            <Notice/>
            <models::ModelPanel/>
            <question::QuestionBox/>
            <settings::SettingsPanel/>
            <Tabs/>
        </main>
        <footer class="foot">
            "Models run in a web worker with candle (Rust → WebAssembly). "
            <span
                role="status"
                data-testid="engine-threads"
                data-threads=move || state.engine.with(|e| e.threads.map(|n| n.to_string()).unwrap_or_default())
            >
                {move || state.engine.with(crate::app::threads::words)}
            </span>
        </footer>
    }
}

#[component]
fn Notice() -> impl IntoView {
    let s = state();
    move || {
        s.notice.get().map(|n| {
            view! {
                <div class="notice" role="status" data-testid="notice">
                    <span>{n}</span>
                    <button class="link" on:click=move |_| s.notice.set(None) aria-label="Dismiss">"×"</button>
                </div>
            }
        })
    }
}

#[component]
fn Tabs() -> impl IntoView {
    let s = state();
    let focus = |t: Tab| {
        if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&format!("tab-{}", t.id()))) {
            use wasm_bindgen::JsCast;
            let _ = el.unchecked_into::<web_sys::HtmlElement>().focus();
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        let i = Tab::ALL.iter().position(|t| *t == s.tab.get_untracked()).unwrap_or(0);
        let n = Tab::ALL.len();
        let next = match ev.key().as_str() {
            "ArrowRight" => (i + 1) % n,
            "ArrowLeft" => (i + n - 1) % n,
            "Home" => 0,
            "End" => n - 1,
            _ => return,
        };
        ev.prevent_default();
        s.tab.set(Tab::ALL[next]);
        focus(Tab::ALL[next]);
    };
    view! {
        <div class="tabs">
            <div role="tablist" aria-label="Three answers and the prompt" on:keydown=on_key>
                {Tab::ALL
                    .into_iter()
                    .map(|t| {
                        view! {
                            <button
                                role="tab"
                                id=format!("tab-{}", t.id())
                                aria-controls=format!("panel-{}", t.id())
                                aria-selected=move || if s.tab.get() == t { "true" } else { "false" }
                                tabindex=move || if s.tab.get() == t { "0" } else { "-1" }
                                on:click=move |_| s.tab.set(t)
                            >
                                {t.label()}
                                <TabBusy tab=t/>
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            {Tab::ALL
                .into_iter()
                .map(|t| {
                    view! {
                        <section
                            role="tabpanel"
                            id=format!("panel-{}", t.id())
                            aria-labelledby=format!("tab-{}", t.id())
                            hidden=move || s.tab.get() != t
                            tabindex="0"
                        >
                            {match t {
                                Tab::Foundation => view! { <answers::FoundationPanel/> }.into_any(),
                                Tab::Instruct => view! { <answers::InstructPanel/> }.into_any(),
                                Tab::Chat => view! { <answers::ChatPanel/> }.into_any(),
                                Tab::Prompt => view! { <prompt::PromptPanel/> }.into_any(),
                                Tab::Compare => view! { <compare::ComparePanel/> }.into_any(),
                            }}
                        </section>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// A dot on a tab while its answer streams.
#[component]
fn TabBusy(tab: Tab) -> impl IntoView {
    let s = state();
    let busy = move || match tab {
        Tab::Foundation => s.foundation.with(|a| a.phase.busy()),
        Tab::Instruct => s.instruct.with(|a| a.phase.busy()),
        Tab::Chat => s.chat.with(|c| c.iter().any(|t| t.answer.phase.busy())),
        Tab::Prompt => false,
        Tab::Compare => s.grid.with(|g| g.instruct_raw.phase.busy() || g.foundation_templated.phase.busy()),
    };
    move || busy().then(|| view! { <span class="dot" aria-label="writing"></span> })
}
