//! Loading a slot: its files from the hub (cache first) or from files the
//! user picked, then the engine's load and one warm-up pass. A load gives up
//! quietly when a newer load of the same slot replaced it (its ticket).

use std::cell::RefCell;
use std::rc::Rc;

use super::hub::Repo;
use super::{fetch, kick, post, with_state, yield_now, Model, SlotState};
use crate::engine::llm::shards_from_index;
use crate::engine::{CheckpointFiles, LanguageModel, ModelFiles};
use crate::protocol::{check_link, parse_spec, CacheMode, FromWorker, ModelSource, Origin, Precision, Slot};

thread_local! {
    /// Kinds of weights (`LanguageModel::weight_kinds`) whose kernels a
    /// warm-up pass has already run in this worker.
    static WARMED_UP: RefCell<std::collections::BTreeSet<String>> = const { RefCell::new(std::collections::BTreeSet::new()) };
}

/// Where one model's files come from.
pub(super) enum Source {
    /// `fresh`: not from the commit the revision was pinned to.
    Hub { source: ModelSource, mode: CacheMode, fresh: bool },
    Local(Vec<web_sys::File>),
}

/// What `ToWorker::Load` asks besides the models.
#[derive(Clone, Copy)]
pub(super) struct LoadOptions {
    pub precision: Precision,
    pub mode: CacheMode,
    pub ask_first: bool,
    pub fresh: bool,
}

/// This load is still the slot's latest.
fn current(slot: Slot, ticket: u64) -> bool {
    with_state(|s| s.load_tickets[slot.index()] == ticket)
}

/// Loads one slot and puts the outcome in place (Ready or Failed, said to the
/// page), then lets waiting answers run. None: a newer load took over.
pub(super) async fn load_slot(slot: Slot, source: &Source, precision: Precision, ticket: u64) -> Option<SlotState> {
    let result = fetch_and_load(slot, source, precision, &|| current(slot, ticket)).await;
    if !current(slot, ticket) {
        return None;
    }
    let state = match result {
        Ok(Some(model)) => SlotState::Ready(model),
        Ok(None) => return None,
        Err(message) => {
            post(&FromWorker::LoadFailed { slot, message: message.clone() });
            SlotState::Failed(message)
        }
    };
    with_state(|s| s.slots[slot.index()] = state.clone());
    kick();
    Some(state)
}

/// `ToWorker::Load`: the instruct model first (two tabs wait for it), then
/// the foundation model; the same file for both is loaded once. With
/// `ask_first`, a model that is not wholly cached waits for the user's
/// click: the page hears how much it would download.
pub(super) async fn load_hub(tickets: [u64; 2], foundation: Option<ModelSource>, instruct: Option<ModelSource>, options: LoadOptions) {
    let LoadOptions { precision, mode, ask_first, fresh } = options;
    let (mut foundation, mut instruct) = (foundation, instruct);
    if ask_first {
        let shared = foundation.is_some() && foundation == instruct;
        let mut sizes = Vec::new();
        for (slot, source) in [(Slot::Instruct, &mut instruct), (Slot::Foundation, &mut foundation)] {
            let Some(s) = source.as_ref() else { continue };
            let bytes = match download_needed(s, mode, fresh).await {
                Ok(None) => continue,
                Ok(Some(bytes)) => bytes,
                Err(message) => {
                    if current(slot, tickets[slot.index()]) {
                        post(&FromWorker::LoadFailed { slot, message: message.clone() });
                        with_state(|st| st.slots[slot.index()] = SlotState::Failed(message));
                    }
                    *source = None;
                    continue;
                }
            };
            let shared_copy = shared && slot == Slot::Foundation;
            if current(slot, tickets[slot.index()]) {
                sizes.push((slot, if shared_copy { Some(0) } else { bytes }));
                with_state(|st| st.slots[slot.index()] = SlotState::Empty);
            }
            *source = None;
        }
        // A newer `Load` may have begun while the hub was asked.
        sizes.retain(|(slot, _)| current(*slot, tickets[slot.index()]));
        if !sizes.is_empty() {
            post(&FromWorker::DownloadNeeded { sizes });
        }
    }
    let mut instruct_state = None;
    if let Some(source) = &instruct {
        instruct_state = load_slot(Slot::Instruct, &Source::Hub { source: source.clone(), mode, fresh }, precision, tickets[Slot::Instruct.index()]).await;
        if instruct_state.is_none() {
            return;
        }
    }
    let Some(foundation) = foundation else { return };
    let ticket = tickets[Slot::Foundation.index()];
    // One copy in memory: the KV cache follows the prompt, so sharing is safe.
    if let (Some(SlotState::Ready(m)), true) = (&instruct_state, Some(&foundation) == instruct.as_ref()) {
        if current(Slot::Foundation, ticket) {
            let (weight_bytes, context_tokens) = {
                let m = m.borrow();
                (m.weight_bytes() as u64, m.config().context_length as u64)
            };
            post(&FromWorker::Loaded { slot: Slot::Foundation, spec: foundation.spec.clone(), weight_bytes, load_ms: 0.0, commit: None, context_tokens });
            with_state(|s| s.slots[Slot::Foundation.index()] = SlotState::Ready(m.clone()));
            kick();
        }
        return;
    }
    load_slot(Slot::Foundation, &Source::Hub { source: foundation, mode, fresh }, precision, ticket).await;
}

/// Before a download the user has not agreed to: `Ok(None)` when every file
/// is cached (the load starts at once), else the bytes it would fetch
/// (`Some(None)`: unknown). `Err`: the hub says the repo is missing or gated.
async fn download_needed(source: &ModelSource, mode: CacheMode, fresh: bool) -> Result<Option<Option<u64>>, String> {
    check_link(&source.hub, &source.revision)?;
    let (name, gguf) = parse_spec(&source.spec)?;
    let repo = Repo::open(source, &name, mode, fresh).await;
    if repo.all_cached().await {
        return Ok(None);
    }
    Ok(Some(repo.download_size(gguf.as_deref()).await?.map(|(all, _)| all)))
}

/// The files of a local pick, by name: (the spec shown, the GGUF file if any).
fn local_layout(files: &[web_sys::File]) -> Result<(String, Option<String>), String> {
    let names: Vec<String> = files.iter().map(|f| f.name()).collect();
    let ggufs: Vec<&String> = names.iter().filter(|n| n.to_ascii_lowercase().ends_with(".gguf")).collect();
    match ggufs.as_slice() {
        [one] => return Ok((format!("local file {one}"), Some(one.to_string()))),
        [] => {}
        many => {
            let list = many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return Err(format!("Pick one GGUF file, not {} ({list}).", many.len()));
        }
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    let mut missing: Vec<&str> = ["config.json", "tokenizer.json"].into_iter().filter(|n| !has(n)).collect();
    if !has("model.safetensors") && !has("model.safetensors.index.json") {
        missing.push("model.safetensors (or model.safetensors.index.json and its shards)");
    }
    if !missing.is_empty() {
        return Err(format!(
            "These files are not a model: missing {}. Pick one .gguf file, or all the files of a checkpoint folder together \
             (config.json, tokenizer.json, tokenizer_config.json, model.safetensors or its shards). You picked: {}.",
            missing.join(", "),
            if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
        ));
    }
    Ok((format!("local checkpoint ({} files)", names.len()), None))
}

/// One file of a model: `Ok(None)` when `optional` and absent. `blob`:
/// weights, which the engine reads through a `Read + Seek` (the file stays
/// outside wasm memory); small files come as bytes.
async fn get_file(slot: Slot, source: &Source, repo: Option<&Repo>, file: &str, optional: bool, blob: bool) -> Result<Option<fetch::Data>, String> {
    match (source, repo) {
        (Source::Hub { .. }, Some(repo)) => fetch::fetch_file(fetch::FileRequest { slot, repo, file, optional, blob }).await,
        (Source::Hub { .. }, None) => unreachable!("a hub source has its repo"),
        (Source::Local(files), _) => match files.iter().find(|f| f.name() == file) {
            // A File is a Blob: read in place, slice by slice.
            Some(f) if blob => {
                let n = f.size() as u64;
                post(&FromWorker::Progress { slot, file: file.to_string(), done: n, total: Some(n), origin: Origin::Local });
                Ok(Some(fetch::Data::Blob(f.clone().into())))
            }
            Some(f) => fetch::read_local(slot, f).await.map(|b| Some(fetch::Data::Bytes(b))),
            None if optional => Ok(None),
            None => Err(format!("{file} is needed but was not among the files you picked. Pick it together with the others.")),
        },
    }
}

/// Fetches and loads one model. `Ok(None)`: abandoned (`current` turned false).
async fn fetch_and_load(slot: Slot, source: &Source, precision: Precision, current: &impl Fn() -> bool) -> Result<Option<Model>, String> {
    let (spec, repo, gguf) = match source {
        Source::Hub { source, mode, fresh } => {
            check_link(&source.hub, &source.revision)?;
            let (name, gguf) = parse_spec(&source.spec)?;
            let repo = Repo::open(source, &name, *mode, *fresh).await;
            // A GGUF is an LFS file: its redirect hides X-Repo-Commit, so the
            // commit comes from the hub's API first.
            if gguf.is_some() {
                repo.ask_commit("the current commit").await?;
            }
            (source.spec.clone(), Some(repo), gguf)
        }
        Source::Local(files) => {
            let (spec, gguf) = local_layout(files)?;
            (spec, None, gguf)
        }
    };
    let get = |file: String, optional: bool, blob: bool| {
        let repo = repo.as_ref();
        async move { get_file(slot, source, repo, &file, optional, blob).await }
    };
    let required = |file: &str| format!("{file} is required");
    let started = js_sys::Date::now();
    enum Files {
        Gguf(fetch::Data),
        Checkpoint(CheckpointFiles<'static>),
    }
    let files = match gguf {
        Some(file) => Files::Gguf(get(file.clone(), false, true).await?.ok_or_else(|| required(&file))?),
        None => {
            let bytes = |d: Option<fetch::Data>| d.map(fetch::Data::into_bytes).transpose();
            let config_json = get("config.json".into(), false, false).await?.ok_or_else(|| required("config.json"))?.into_bytes()?;
            let tokenizer_json = get("tokenizer.json".into(), false, false).await?.ok_or_else(|| required("tokenizer.json"))?.into_bytes()?;
            let tokenizer_config_json = bytes(get("tokenizer_config.json".into(), true, false).await?)?;
            let generation_config_json = bytes(get("generation_config.json".into(), true, false).await?)?;
            // Safetensors files stay Blobs (outside wasm memory), read tensor by tensor.
            let shards = match get("model.safetensors".into(), true, true).await? {
                Some(data) => vec![data],
                None => {
                    let index = bytes(get("model.safetensors.index.json".into(), true, false).await?)?
                        .ok_or_else(|| format!("{spec} has neither model.safetensors nor model.safetensors.index.json: is it a model repo?"))?;
                    let mut shards = vec![];
                    for name in shards_from_index(&index).map_err(|e| e.to_string())? {
                        shards.push(get(name.clone(), false, true).await?.ok_or_else(|| required(&name))?);
                    }
                    shards
                }
            };
            let safetensors = shards.into_iter().map(fetch::Data::into_reader).collect::<Result<Vec<_>, String>>()?;
            Files::Checkpoint(CheckpointFiles { config_json, tokenizer_json, tokenizer_config_json, generation_config_json, safetensors })
        }
    };
    if !current() {
        return Ok(None);
    }
    post(&FromWorker::Preparing { slot });
    yield_now().await;
    let mut model = match files {
        Files::Gguf(gguf) => LanguageModel::load_gguf(gguf.into_reader()?.as_mut(), precision).map_err(|e| format!("{spec}: {e}"))?,
        Files::Checkpoint(checkpoint) => LanguageModel::load(ModelFiles::Checkpoint(checkpoint), precision).map_err(|e| e.to_string())?,
    };
    if !current() {
        return Ok(None);
    }
    // One throwaway pass so the first question runs optimized wasm (see
    // warm_up); once per kind of weights, as the kernels are shared.
    let kinds = model.weight_kinds();
    if !WARMED_UP.with_borrow(|w| kinds.is_subset(w)) {
        model.warm_up().map_err(|e| format!("{spec}: the model fails on a first test pass: {e}"))?;
        WARMED_UP.with_borrow_mut(|w| w.extend(kinds));
    }
    let commit = repo.as_ref().and_then(Repo::commit);
    if let Some(repo) = &repo {
        repo.finish().await;
    }
    let (weight_bytes, context_tokens) = (model.weight_bytes() as u64, model.config().context_length as u64);
    post(&FromWorker::Loaded { slot, spec, weight_bytes, load_ms: js_sys::Date::now() - started, commit, context_tokens });
    if let Some(repo) = &repo {
        repo.check_newer(slot).await;
    }
    Ok(Some(Rc::new(RefCell::new(model))))
}
