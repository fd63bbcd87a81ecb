//! The storage panel: what the browser keeps of the model files, Delete,
//! and persistent storage.

use leptos::prelude::*;

use super::state;
use crate::app::bridge;
use crate::app::signals::AppState;
use crate::app::text;

#[component]
pub(super) fn StoragePanel() -> impl IntoView {
    let s = state();
    let on_toggle = move |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        let open = event_target::<web_sys::HtmlElement>(&ev).dyn_into::<web_sys::HtmlDetailsElement>().map(|d| d.open()).unwrap_or(false);
        s.storage_open.set(open);
        if open {
            bridge::list_cache();
            persisted(s, false);
        }
    };
    let models = move || {
        s.storage.with(|st| {
            let mut groups: Vec<(String, Vec<(String, u64)>)> = vec![];
            for f in &st.files {
                match groups.iter_mut().find(|(m, _)| *m == f.model) {
                    Some((_, v)) => v.push((f.file.clone(), f.bytes)),
                    None => groups.push((f.model.clone(), vec![(f.file.clone(), f.bytes)])),
                }
            }
            groups
        })
    };
    view! {
        <details class="storage" data-testid="storage" on:toggle=on_toggle>
            <summary>"Storage: models kept in this browser"</summary>
            <p class="small">
                "Downloaded model files are kept in this browser's cache, so the next visit needs no download (and works offline). "
                {move || s.storage.with(|st| match (st.usage, st.quota) {
                    (Some(u), Some(q)) => format!("This site uses {} of the {} the browser allows it.", text::bytes(u as u64), text::bytes(q as u64)),
                    _ => String::new(),
                })}
                {(!has_storage_api()).then(|| view! {
                    <span data-testid="no-storage-api">
                        "This browser does not tell the page about its storage (it has no navigator.storage), so the space used and the "
                        "quota cannot be shown, and the files cannot be marked to keep: the browser may evict them when space runs low. "
                        "Cached models still work."
                    </span>
                })}
            </p>
            {move || s.storage.with(|st| st.message.clone()).map(|m| view! { <p class="small" data-testid="storage-message">{m}</p> })}
            <ul class="cached" data-testid="cached-models">
                {move || {
                    let groups = models();
                    if groups.is_empty() {
                        return view! { <li class="muted">"Nothing cached yet."</li> }.into_any();
                    }
                    groups
                        .into_iter()
                        .map(|(model, files)| {
                            let size: u64 = files.iter().map(|(_, b)| *b).sum();
                            let names = files.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>().join(", ");
                            let m = model.clone();
                            view! {
                                <li data-testid="cached-model">
                                    <code>{model.clone()}</code>
                                    {format!(" — {} ({names}) ", text::bytes(size))}
                                    <button data-testid="delete-cached" on:click=move |_| bridge::delete_cached(m.clone())>"Delete"</button>
                                </li>
                            }
                        })
                        .collect_view()
                        .into_any()
                }}
            </ul>
            <div class="actions">
                <button on:click=move |_| bridge::list_cache()>"Refresh"</button>
                <button data-testid="persist" disabled=!has_storage_api() on:click=move |_| persisted(s, true)>"Keep it (persistent storage)"</button>
                <span class="small" data-testid="persisted">
                    {move || s.storage.with(|st| match st.persisted {
                        Some(true) => "Persistent: the browser will not evict these files on its own.",
                        Some(false) => "Not persistent: the browser may evict these files when space runs low.",
                        None => "",
                    })}
                </span>
            </div>
        </details>
    }
}

/// `navigator.storage` (the StorageManager) exists: missing in some
/// embedded WebKit browsers and older ones.
fn has_storage_api() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"navigator".into()).ok())
        .and_then(|n| js_sys::Reflect::get(&n, &"storage".into()).ok())
        .is_some_and(|s| !s.is_undefined() && !s.is_null())
}

/// `navigator.storage.persisted()`, or `persist()` when `ask`.
fn persisted(s: AppState, ask: bool) {
    use wasm_bindgen::JsCast;
    let Some(storage) = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"navigator".into()).ok())
        .and_then(|n| js_sys::Reflect::get(&n, &"storage".into()).ok()).filter(|v| !v.is_undefined()) else {
        return;
    };
    let Ok(f) = js_sys::Reflect::get(&storage, &(if ask { "persist" } else { "persisted" }).into()).and_then(|f| f.dyn_into::<js_sys::Function>()) else {
        return;
    };
    let Ok(p) = f.call0(&storage) else { return };
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(v) = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&p)).await {
            s.storage.update(|st| st.persisted = v.as_bool());
        }
    });
}
