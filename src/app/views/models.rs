//! The model panel: one row per slot (name, where from, state, each file's
//! progress), and local files picked or dropped on it.

use leptos::prelude::*;

use super::state;
use super::storage::StoragePanel;
use crate::app::loading;
use crate::app::state::{LoadPhase, ModelStatus};
use crate::app::text;
use crate::protocol::Slot;

#[component]
pub(super) fn ModelPanel() -> impl IntoView {
    let s = state();
    // Each row folds to one line once its model is ready (the question and
    // the tabs then fit the first screen); "details" opens it again.
    let open = [RwSignal::new(false), RwSignal::new(false)];
    let all_folded = move || [s.instruct_model, s.foundation_model].iter().zip(open).all(|(m, o)| folded(*m, o));
    view! {
        <section class="models" aria-label="Model status">
            <DownloadOffer/>
            <ModelRow label="Instruct / chat model" status=s.instruct_model which=Slot::Instruct open=open[0]/>
            <ModelRow label="Foundation model" status=s.foundation_model which=Slot::Foundation open=open[1]/>
            <p class="small" hidden=all_folded>
                "Use files from this computer: pick or drop one .gguf file, or all the files of a checkpoint folder "
                "(config.json, tokenizer.json, tokenizer_config.json, model.safetensors or its shards). "
                "They are read inside this page; nothing is uploaded anywhere."
            </p>
        </section>
        <StoragePanel/>
    }
}

/// Before the first download from a hub on another origin: how much it
/// is, a button that starts it, and the ways to do without it.
#[component]
fn DownloadOffer() -> impl IntoView {
    let s = state();
    let sizes = move || {
        [s.instruct_model, s.foundation_model]
            .iter()
            .filter_map(|m| m.with(|m| match m.phase {
                LoadPhase::AskFirst { bytes } => Some(bytes),
                _ => None,
            }))
            .collect::<Vec<_>>()
    };
    let host = move || {
        let hub = s.config.with_value(|c| c.hub.clone());
        hub.split_once("://").map_or(hub.clone(), |(_, h)| h.trim_end_matches('/').to_string())
    };
    view! {
        <Show when=move || !sizes().is_empty()>
            <div class="download-offer" role="region" aria-label="Download the models" data-testid="download-offer">
                <p>
                    "The models are not in this browser yet. They come from " <code>{host}</code>
                    ", once: later visits read them from this browser's storage, even offline."
                </p>
                <button class="primary" data-testid="download-models" on:click=move |_| loading::agree_to_download(s)>
                    {move || text::download_button_words(&sizes())}
                </button>
                <p class="small">
                    "Or, without this download: open a model's details and use its files from this computer, "
                    "or serve a copy of the files next to the page (a mirror, ?hub=./models; see the README)."
                </p>
            </div>
        </Show>
    }
}

/// A row shows one line: its model is ready (or none is set) and the user
/// has not opened it.
fn folded(status: RwSignal<ModelStatus>, open: RwSignal<bool>) -> bool {
    !open.get() && status.with(|m| matches!(m.phase, LoadPhase::Ready { .. } | LoadPhase::None))
}

#[component]
fn ModelRow(label: &'static str, status: RwSignal<ModelStatus>, which: Slot, open: RwSignal<bool>) -> impl IntoView {
    let testid = match which {
        Slot::Foundation => "model-foundation",
        Slot::Instruct => "model-instruct",
    };
    let s = state();
    let phase_words = move || {
        let shared = which == Slot::Foundation && s.instruct_model.with(|i| status.with(|m| i.spec == m.spec));
        status.with(|m| text::model_phase_words(m, shared))
    };
    let phase_class = move || {
        status.with(|m| match m.phase {
            LoadPhase::Ready { .. } => "model ready",
            LoadPhase::Failed(_) => "model failed",
            _ => "model",
        })
    };
    let input_id = format!("local-{testid}");
    let more_id = format!("more-{testid}");
    let controls = more_id.clone();
    let drag_over = RwSignal::new(false);
    let on_pick = move |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(list) = input.files() {
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            loading::load_local(s, which, files);
        }
        let _ = input.dyn_ref::<web_sys::HtmlInputElement>().map(|i| i.set_value(""));
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        drag_over.set(false);
        if let Some(list) = ev.data_transfer().and_then(|d| d.files()) {
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            loading::load_local(s, which, files);
        }
    };
    view! {
        <div
            class=phase_class
            class:drag=move || drag_over.get()
            data-testid=testid
            on:dragover=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                drag_over.set(true);
            }
            on:dragleave=move |_| drag_over.set(false)
            on:drop=on_drop
        >
            <div class="model-head">
                <strong>{label}</strong>
                " "
                <code class="spec">{move || status.with(|m| m.spec.clone())}</code>
                {move || status.with(|m| m.origin.clone()).map(|o| view! { " " <span class="origin" data-testid="model-origin">{o}</span> })}
                {move || {
                    let revision = s.config.with_value(|c| c.revision.clone());
                    status.with(|m| m.commit.as_deref().map(|c| text::commit_words(&revision, c)))
                        .map(|c| view! { " " <span class="commit" data-testid="model-commit">{c}</span> })
                }}
                " — "
                <span class="phase" data-testid="model-phase">{phase_words}</span>
                {move || {
                    status.with(|m| matches!(m.phase, LoadPhase::Ready { .. } | LoadPhase::None)).then(|| {
                        view! {
                            " "
                            <button
                                class="link"
                                data-testid="model-details"
                                aria-expanded=move || if open.get() { "true" } else { "false" }
                                aria-controls=controls.clone()
                                on:click=move |_| open.update(|o| *o = !*o)
                            >
                                {move || if open.get() { "hide details" } else { "details" }}
                            </button>
                        }
                    })
                }}
            </div>
            {move || status.with(|m| m.warning.clone()).map(|w| view! { <p class="warning" role="status" data-testid="model-warning">{w}</p> })}
            {move || {
                let revision = s.config.with_value(|c| if c.revision.trim().is_empty() { "main".to_string() } else { c.revision.clone() });
                status.with(|m| m.newer.clone().map(|newer| (newer, m.commit.clone().unwrap_or_default()))).map(|(newer, have)| {
                    view! {
                        <p class="warning" role="status" data-testid="model-newer">
                            {format!(
                                "{revision} has moved on to {} since this model was downloaded (this page uses {}). ",
                                &newer[..newer.len().min(7)],
                                &have[..have.len().min(7)]
                            )}
                            <button class="link" data-testid="model-update" on:click=move |_| loading::update_models(s)>"Update"</button>
                        </p>
                    }
                })
            }}
            <div class="model-more" id=more_id.clone() hidden=move || folded(status, open)>
            <ul class="files">
                {move || {
                    status.with(|m| {
                        m.files
                            .iter()
                            .map(|f| {
                                let total = f.total.unwrap_or(0).max(f.done);
                                view! {
                                    <li data-testid="file-progress" data-origin=text::source_words(f.origin)>
                                        <span class="file">{f.file.clone()}</span>
                                        <progress max=total.max(1).to_string() value=f.done.to_string()></progress>
                                        <span class="bytes" data-done=f.done.to_string() data-total=total.to_string()>{text::file_words(f)}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    })
                }}
            </ul>
            {move || status.with(|m| text::total_words(&m.files)).map(|w| view! { <p class="small" data-testid="total-progress">{w}</p> })}
            <div class="local">
                <label class="button" for=input_id.clone()>"Use files from this computer…"</label>
                <input
                    id=input_id
                    class="visually-hidden"
                    type="file"
                    multiple
                    accept=".gguf,.json,.safetensors"
                    data-testid="local-files"
                    on:change=on_pick
                />
                <span class="hint">" or drop them here"</span>
                {move || {
                    s.model(which)
                        .with(|m| m.spec.starts_with("local: "))
                        .then(|| view! { <button class="link" on:click=move |_| loading::forget_local(s, which)>"back to the hub"</button> })
                }}
            </div>
            </div>
        </div>
    }
}
