//! The model picker: the SmolLM2 family's sizes (base + instruct), any hub
//! repo or one GGUF file, each with what it would download and whether it
//! fits a tab at the chosen precision (`ToWorker::Inspect`, asked when the
//! choice changes; `picker::report_words`). "Use these models" loads them
//! and puts them in the address bar; a model that does not fit cannot be
//! used until the precision it needs is chosen.

use leptos::prelude::*;

use super::question::update_address;
use super::state;
use crate::app::bridge;
use crate::app::loading;
use crate::app::picker::{report_words, Fit, SIBLINGS};
use crate::app::signals::AppState;
use crate::protocol::{ModelSource, ToWorker};

/// The source a spec names on the page's hub and revision (None: empty).
fn source_of(s: AppState, spec: &str) -> Option<ModelSource> {
    let spec = spec.trim();
    let config = s.config.get_value();
    (!spec.is_empty()).then(|| ModelSource { hub: loading::absolute_hub(&config.hub), spec: spec.to_string(), revision: config.revision.clone() })
}

/// Asks the worker about `spec` unless it has answered already.
fn inspect(s: AppState, spec: &str) {
    let Some(source) = source_of(s, spec) else { return };
    if !s.reports.with_untracked(|r| r.iter().any(|(src, _)| *src == source)) {
        bridge::send(&ToWorker::Inspect { source });
    }
}

#[component]
pub(super) fn ModelPicker() -> impl IntoView {
    let s = state();
    let instruct = RwSignal::new(s.config.with_value(|c| c.instruct.clone()));
    let foundation = RwSignal::new(s.config.with_value(|c| c.foundation.clone().unwrap_or_default()));
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        if open.get() {
            inspect(s, &instruct.get());
            inspect(s, &foundation.get());
        }
    });
    let fit = move |spec: String| {
        let precision = s.settings.with(|x| x.precision);
        let source = source_of(s, &spec)?;
        s.reports.with(|r| r.iter().find(|(src, _)| *src == source).map(|(_, rep)| report_words(rep, precision)))
    };
    let words = move |spec: RwSignal<String>| {
        move || match (spec.get().trim().is_empty(), fit(spec.get())) {
            (true, _) => "No model: this tab will have no answer.".to_string(),
            (false, Some((_, w))) => w,
            (false, None) => "Asking the hub for its size…".to_string(),
        }
    };
    let fits = move || [instruct.get(), foundation.get()].into_iter().filter(|m| !m.trim().is_empty()).map(fit).all(|f| matches!(f, Some((Fit::Fits | Fit::Unknown, _))));
    let needs = move || {
        [instruct.get(), foundation.get()].into_iter().filter_map(fit).find_map(|(f, _)| match f {
            Fit::Needs(p) => Some(p),
            _ => None,
        })
    };
    let use_models = move |_| {
        s.config.update_value(|c| {
            c.instruct = instruct.get_untracked().trim().to_string();
            c.foundation = Some(foundation.get_untracked().trim().to_string()).filter(|f| !f.is_empty());
        });
        loading::use_hub_models(s);
        update_address(s);
        open.set(false);
    };
    view! {
        <details class="picker" data-testid="model-picker" prop:open=move || open.get() on:toggle=move |ev| {
            open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open());
        }>
            <summary>"Change models: a larger sibling, any hub repo"</summary>
            <fieldset class="siblings">
                <legend>"The SmolLM2 family (base + instruct)"</legend>
                {SIBLINGS
                    .iter()
                    .map(|sib| {
                        let chosen = move || instruct.get() == sib.instruct && foundation.get() == sib.foundation;
                        view! {
                            <label class="sibling">
                                <input
                                    type="radio"
                                    name="sibling"
                                    data-testid=format!("sibling-{}", sib.label)
                                    prop:checked=chosen
                                    on:change=move |_| {
                                        instruct.set(sib.instruct.to_string());
                                        foundation.set(sib.foundation.to_string());
                                    }
                                />
                                " " {sib.label}
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <label class="setting" for="picker-instruct">
                <span>"Instruct / chat model (owner/name, or owner/name/file.gguf)"</span>
                <input id="picker-instruct" data-testid="picker-instruct" type="text" prop:value=move || instruct.get() on:change=move |ev| instruct.set(event_target_value(&ev))/>
            </label>
            <p class="small" data-testid="picker-report-instruct">{words(instruct)}</p>
            <label class="setting" for="picker-foundation">
                <span>"Foundation model (empty: none)"</span>
                <input id="picker-foundation" data-testid="picker-foundation" type="text" prop:value=move || foundation.get() on:change=move |ev| foundation.set(event_target_value(&ev))/>
            </label>
            <p class="small" data-testid="picker-report-foundation">{words(foundation)}</p>
            {move || needs().map(|p| view! {
                <button data-testid="picker-precision" on:click=move |_| super::settings::use_precision(s, p)>{format!("Use precision {}", p.name())}</button>
                " "
            })}
            <button class="primary" data-testid="picker-use" disabled=move || !fits() on:click=use_models>"Use these models"</button>
            <p class="small">"Or use files from this computer: open a model's details above."</p>
        </details>
    }
}
