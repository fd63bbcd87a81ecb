//! Loading the models: from the hub (after the user agreed to a download
//! from another origin) or from files the user picked, at the Settings'
//! precision; each a `ToWorker` message through [`super::bridge`].

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::bridge::{post, send};
use super::signals::AppState;
use super::state::{LoadPhase, ModelStatus};
use crate::protocol::{ModelSource, Precision, Slot, ToWorker};

thread_local! {
    /// Files the user picked for a slot (foundation, instruct): kept so a
    /// precision change or a worker restart loads them again.
    static LOCAL: RefCell<[Option<(String, js_sys::Array)>; 2]> = const { RefCell::new([None, None]) };
    /// The user agreed to download from the hub (the "Download 540 MB" click).
    static AGREED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Loads a slot from files the user picked: the File objects go to the
/// worker (structured clone: a handle, not the bytes), which reads them.
pub fn load_local(state: AppState, slot: Slot, files: Vec<web_sys::File>) {
    if files.is_empty() {
        return;
    }
    let names: Vec<String> = files.iter().map(|f| f.name()).collect();
    let array: js_sys::Array = files.into_iter().collect();
    LOCAL.with(|l| l.borrow_mut()[slot.index()] = Some((names.join(", "), array)));
    let precision = state.settings.with_untracked(|s| s.precision);
    send_local(state, slot, precision);
}

fn send_local(state: AppState, slot: Slot, precision: Precision) {
    let Some((names, files)) = LOCAL.with(|l| l.borrow()[slot.index()].clone()) else { return };
    state.model(slot).set(ModelStatus { spec: format!("local: {names}"), phase: LoadPhase::Downloading, ..Default::default() });
    let msg: js_sys::Array = [JsValue::from_str(&ToWorker::LoadLocal { slot, precision }.to_json()), files.into()].into_iter().collect();
    post(msg.into());
}

/// Back to the hub for a slot (forget its local files) and reload.
pub fn forget_local(state: AppState, slot: Slot) {
    LOCAL.with(|l| l.borrow_mut()[slot.index()] = None);
    load_models(state);
}

pub fn is_local(slot: Slot) -> bool {
    LOCAL.with(|l| l.borrow()[slot.index()].is_some())
}

/// A hub address relative to the page (e.g. `./models`) made absolute, since
/// the worker resolves URLs against its own script.
pub fn absolute_hub(hub: &str) -> String {
    let base = web_sys::window().and_then(|w| w.document()).and_then(|d| d.base_uri().ok().flatten()).unwrap_or_default();
    web_sys::Url::new_with_base(hub, &base).map(|u| u.href()).unwrap_or_else(|_| hub.to_string()).trim_end_matches('/').to_string()
}

/// A hub on another origin than the page (huggingface.co, not a mirror next
/// to the page): its first download waits for the user's click.
fn remote(hub: &str) -> bool {
    let page = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    web_sys::Url::new(hub).map(|u| u.origin() != page).unwrap_or(true)
}

/// The user's click on "Download …": load, downloading what is missing.
pub fn agree_to_download(state: AppState) {
    AGREED.with(|a| a.set(true));
    send_load(state, false);
}

/// Load the newest commit of each revision (the "Update" offer).
pub fn update_models(state: AppState) {
    AGREED.with(|a| a.set(true));
    send_load(state, true);
}

/// The model picker's choice (already in `config`): from the hub, both
/// slots, its download agreed to (the picker showed its size).
pub fn use_hub_models(state: AppState) {
    LOCAL.with(|l| *l.borrow_mut() = [None, None]);
    AGREED.with(|a| a.set(true));
    send_load(state, false);
}

/// (Re)loads both models with the current precision.
pub fn load_models(state: AppState) {
    send_load(state, false);
}

fn send_load(state: AppState, fresh: bool) {
    let config = state.config.get_value();
    let hub = absolute_hub(&config.hub);
    let precision = state.settings.with_untracked(|s| s.precision);
    let (local_f, local_i) = (is_local(Slot::Foundation), is_local(Slot::Instruct));
    let origin = super::text::origin_words(&hub, &config.revision);
    state.instruct_model.set(ModelStatus { spec: config.instruct.clone(), origin: origin.clone(), phase: LoadPhase::Downloading, ..Default::default() });
    state.foundation_model.set(match &config.foundation {
        Some(spec) => ModelStatus { spec: spec.clone(), origin, phase: LoadPhase::Downloading, ..Default::default() },
        None => ModelStatus { phase: LoadPhase::None, ..Default::default() },
    });
    let source = |spec: String| ModelSource { hub: hub.clone(), spec, revision: config.revision.clone() };
    send(&ToWorker::Load {
        foundation: if local_f { None } else { config.foundation.clone().map(source) },
        instruct: if local_i { None } else { Some(source(config.instruct.clone())) },
        precision,
        cache: config.cache,
        ask_first: remote(&hub) && !AGREED.with(|a| a.get()),
        fresh,
    });
    for slot in [Slot::Instruct, Slot::Foundation] {
        send_local(state, slot, precision);
    }
}

