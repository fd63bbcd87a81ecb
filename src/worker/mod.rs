//! The web worker: the engine's only home in the browser. It fetches the model
//! files itself ([`fetch`]), loads them with the engine, and drives generation
//! one token per tick, yielding a macrotask between tokens so a `Stop` (or any
//! message) is handled promptly. It speaks only [`crate::protocol`].
//!
//! State lives in one thread-local; message handlers and the two async loops
//! (loading, generating) take short borrows of it and never across an await.

mod cache;
mod fetch;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::llm::shards_from_index;
use crate::engine::modes::{foundation_prompt, instruct_prompt};
use crate::engine::{CheckpointFiles, LanguageModel, ModelFiles, Step};
use crate::protocol::{parse_spec, CacheMode, FromWorker, Message, Mode, ModelSource, Precision, PromptToken, SamplingSettings, Slot, ToWorker};

type Model = Rc<RefCell<LanguageModel>>;

#[derive(Clone)]
enum SlotState {
    /// No model asked for (or not yet).
    Empty,
    Loading,
    Ready(Model),
    Failed(String),
}

struct Job {
    job: u64,
    mode: Mode,
    question: String,
    messages: Vec<Message>,
    settings: SamplingSettings,
}

struct State {
    foundation: SlotState,
    instruct: SlotState,
    queue: VecDeque<Job>,
    /// A generation loop is running.
    running: bool,
    /// Set by `Stop`: the running job ends at its next tick.
    stop: bool,
    /// Bumped by every `Load`/`LoadLocal`: jobs of an older epoch give up.
    epoch: u64,
    /// Per slot (foundation, instruct), bumped by every load of that slot:
    /// a load of an older generation gives up.
    generation: [u64; 2],
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Foundation => 0,
        Slot::Instruct => 1,
    }
}

impl State {
    fn slot(&self, slot: Slot) -> &SlotState {
        match slot {
            Slot::Foundation => &self.foundation,
            Slot::Instruct => &self.instruct,
        }
    }
    fn slot_mut(&mut self, slot: Slot) -> &mut SlotState {
        match slot {
            Slot::Foundation => &mut self.foundation,
            Slot::Instruct => &mut self.instruct,
        }
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        foundation: SlotState::Empty,
        instruct: SlotState::Empty,
        queue: VecDeque::new(),
        running: false,
        stop: false,
        epoch: 0,
        generation: [0, 0],
    });
    /// Kinds of weights (`LanguageModel::weight_kinds`) whose kernels a
    /// warm-up pass has already run in this worker.
    static WARMED_UP: RefCell<std::collections::BTreeSet<String>> = const { RefCell::new(std::collections::BTreeSet::new()) };
    /// Resolvers waiting for the next macrotask (see [`yield_now`]).
    static YIELDS: RefCell<Option<(web_sys::MessagePort, Rc<RefCell<VecDeque<js_sys::Function>>>)>> = const { RefCell::new(None) };
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub(crate) fn post(msg: &FromWorker) {
    // Posting a string cannot fail in a dedicated worker.
    let _ = scope().post_message(&JsValue::from_str(&msg.to_json()));
}

/// Entry point (from `src/bin/worker.rs`): listen for `ToWorker` messages.
pub fn start() {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        // A string, or `[json, [File, ...]]` for `LoadLocal`.
        let data = ev.data();
        let (text, files) = match data.dyn_ref::<js_sys::Array>() {
            Some(a) => (a.get(0).as_string(), a.get(1).dyn_into::<js_sys::Array>().ok()),
            None => (data.as_string(), None),
        };
        let Some(text) = text else { return };
        match ToWorker::from_json(&text) {
            Ok(ToWorker::LoadLocal { slot, precision }) => {
                let files: Vec<web_sys::File> = files.map(|a| a.iter().filter_map(|f| f.dyn_into().ok()).collect()).unwrap_or_default();
                // Running and queued answers end (their model is being replaced).
                let gen = with_state(|s| {
                    s.epoch += 1;
                    s.stop = s.running;
                    s.generation[slot_index(slot)] += 1;
                    *s.slot_mut(slot) = SlotState::Loading;
                    s.generation[slot_index(slot)]
                });
                drop_queue();
                spawn_local(async move {
                    let current = move || with_state(|s| s.generation[slot_index(slot)] == gen);
                    let state = match load_model(slot, &Source::Local(files), precision, &current).await {
                        Ok(Some(m)) => SlotState::Ready(m),
                        Ok(None) => return,
                        Err(e) => SlotState::Failed(e),
                    };
                    if current() {
                        with_state(|s| *s.slot_mut(slot) = state);
                        kick();
                    }
                });
            }
            Ok(msg) => handle(msg),
            Err(e) => web_sys::console::error_1(&e.into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&FromWorker::Ready);
}

fn handle(msg: ToWorker) {
    match msg {
        ToWorker::Load { foundation, instruct, precision, cache } => {
            let gens = with_state(|s| {
                s.epoch += 1;
                s.stop = s.running;
                s.generation[0] += 1;
                s.generation[1] += 1;
                s.foundation = if foundation.is_some() { SlotState::Loading } else { SlotState::Empty };
                s.instruct = if instruct.is_some() { SlotState::Loading } else { SlotState::Empty };
                s.generation
            });
            drop_queue();
            spawn_local(load_all(gens, foundation, instruct, precision, cache));
        }
        ToWorker::LoadLocal { .. } => {}
        ToWorker::ListCache => spawn_local(send_storage(None)),
        ToWorker::DeleteCached { model } => spawn_local(async move {
            let message = match cache::delete_model(&model).await {
                Ok(n) => format!("Deleted {n} cached file(s) of {model}."),
                Err(e) => format!("Could not delete {model} from the cache: {e}"),
            };
            send_storage(Some(message)).await;
        }),
        ToWorker::Ask { job, mode, question, messages, settings } => {
            with_state(|s| s.queue.push_back(Job { job, mode, question, messages, settings }));
            kick();
        }
        ToWorker::Stop => {
            with_state(|s| s.stop = s.running);
            drop_queue();
        }
    }
}

/// Ends every queued (not yet started) job as stopped.
fn drop_queue() {
    let dropped: Vec<Job> = with_state(|s| s.queue.drain(..).collect());
    for j in dropped {
        post(&FromWorker::Done { job: j.job, stop_reason: None, timings: Default::default(), token_ids: vec![], reply: String::new(), end_candidates: vec![] });
    }
}

/// Starts the generation loop if it is idle and there is work.
fn kick() {
    let start = with_state(|s| {
        if s.running || s.queue.is_empty() {
            return false;
        }
        s.running = true;
        true
    });
    if start {
        spawn_local(run_queue());
    }
}

async fn run_queue() {
    loop {
        // The next job, unless its model is still loading (then wait for `kick`).
        let next = with_state(|s| {
            let slot = s.queue.front()?.mode.slot();
            if matches!(s.slot(slot), SlotState::Loading) {
                return None;
            }
            let job = s.queue.pop_front()?;
            s.stop = false;
            Some((job, s.slot(slot).clone(), s.epoch))
        });
        let Some((job, slot_state, epoch)) = next else { break };
        let id = job.job;
        let result = match slot_state {
            SlotState::Ready(model) => run_job(&model, job, epoch).await,
            SlotState::Failed(why) => Err(format!("The {} model is not available: {why}", slot_name(job.mode.slot()))),
            SlotState::Empty => Err(match job.mode.slot() {
                Slot::Foundation => "No foundation model is set (the `foundation` setting is empty), so there is no foundation answer.".to_string(),
                Slot::Instruct => "No instruct model is loaded yet.".to_string(),
            }),
            SlotState::Loading => unreachable!("checked above"),
        };
        if let Err(message) = result {
            post(&FromWorker::Failed { job: id, message });
        }
    }
    with_state(|s| s.running = false);
}

fn slot_name(slot: Slot) -> &'static str {
    match slot {
        Slot::Foundation => "foundation",
        Slot::Instruct => "instruct",
    }
}

/// Runs one answer to its end, one token per macrotask.
async fn run_job(model: &Model, job: Job, epoch: u64) -> Result<(), String> {
    let Job { job, mode, question, messages, settings } = job;
    let err = |e: crate::engine::EngineError| e.to_string();
    let (prompt, tokens) = {
        let m = model.borrow();
        let prompt = match mode {
            Mode::Foundation => foundation_prompt(&question),
            Mode::Instruct => instruct_prompt(&m, &question).map_err(err)?,
            Mode::Chat => m.chat_prompt(&messages, true).map_err(err)?,
        };
        let ids = m.tokenizer.encode(&prompt).map_err(err)?;
        let tokens = ids
            .iter()
            .map(|&id| PromptToken { id, piece: m.tokenizer.piece(id), special: m.tokenizer.is_special(id) })
            .collect();
        (prompt, tokens)
    };
    post(&FromWorker::Started { job, mode, prompt: prompt.clone(), tokens });
    yield_now().await;
    let stopped = || with_state(|s| s.stop || s.epoch != epoch);
    if stopped() {
        post(&FromWorker::Done { job, stop_reason: None, timings: Default::default(), token_ids: vec![], reply: String::new(), end_candidates: vec![] });
        return Ok(());
    }
    let mut g = model.borrow_mut().start(&prompt, settings).map_err(err)?;
    loop {
        yield_now().await;
        let reason = if stopped() {
            None
        } else {
            match model.borrow_mut().next_token(&mut g).map_err(err)? {
                Step::Token { id, text, candidates } => {
                    post(&FromWorker::Token { job, id, text, candidates });
                    continue;
                }
                Step::Done(reason) => Some(reason),
            }
        };
        let m = model.borrow();
        let reply = m.tokenizer.decode(g.generated_ids(), true).map_err(err)?;
        post(&FromWorker::Done {
            job,
            stop_reason: reason,
            timings: g.timings().clone(),
            token_ids: g.generated_ids().to_vec(),
            reply,
            end_candidates: g.end_candidates().to_vec(),
        });
        return Ok(());
    }
}

/// Lets the event loop run (one macrotask) so incoming messages are handled.
/// A MessageChannel round trip: unlike `setTimeout(0)` it is not clamped to 4 ms.
async fn yield_now() {
    let (port, waiting) = YIELDS.with(|y| {
        y.borrow_mut()
            .get_or_insert_with(|| {
                let channel = web_sys::MessageChannel::new().expect("MessageChannel exists in workers");
                let waiting: Rc<RefCell<VecDeque<js_sys::Function>>> = Rc::default();
                let w = waiting.clone();
                let on_message = Closure::<dyn FnMut()>::new(move || {
                    if let Some(resolve) = w.borrow_mut().pop_front() {
                        let _ = resolve.call0(&JsValue::NULL);
                    }
                });
                channel.port1().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                on_message.forget();
                (channel.port2(), waiting)
            })
            .clone()
    });
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        waiting.borrow_mut().push_back(resolve);
        let _ = port.post_message(&JsValue::NULL);
    });
    let _ = JsFuture::from(promise).await;
}

async fn send_storage(message: Option<String>) {
    let (files, message) = match cache::list().await {
        Ok(f) => (f, message),
        Err(e) => (vec![], Some(format!("The model cache cannot be read: {e}"))),
    };
    let (usage, quota) = cache::estimate().await;
    post(&FromWorker::Storage { files, usage, quota, message });
}

/// Where one model's files come from.
enum Source {
    Hub(ModelSource, CacheMode),
    Local(Vec<web_sys::File>),
}

async fn load_all(gens: [u64; 2], foundation: Option<ModelSource>, instruct: Option<ModelSource>, precision: Precision, mode: CacheMode) {
    let current = |slot: Slot| move || with_state(|s| s.generation[slot_index(slot)] == gens[slot_index(slot)]);
    let mut instruct_state = None;
    if let Some(instruct) = &instruct {
        let state = match load_model(Slot::Instruct, &Source::Hub(instruct.clone(), mode), precision, &current(Slot::Instruct)).await {
            Ok(Some(m)) => SlotState::Ready(m),
            Ok(None) => return,
            Err(e) => SlotState::Failed(e),
        };
        if !current(Slot::Instruct)() {
            return;
        }
        with_state(|s| s.instruct = state.clone());
        instruct_state = Some(state);
        kick();
    }
    let Some(foundation) = foundation else {
        kick();
        return;
    };
    // The same file for both: one copy in memory (the KV cache follows the prompt).
    let state = match (&instruct_state, Some(&foundation) == instruct.as_ref()) {
        (Some(SlotState::Ready(m)), true) => {
            post(&FromWorker::Loaded { slot: Slot::Foundation, spec: foundation.spec.clone(), weight_bytes: m.borrow().weight_bytes() as u64, load_ms: 0.0 });
            SlotState::Ready(m.clone())
        }
        _ => match load_model(Slot::Foundation, &Source::Hub(foundation, mode), precision, &current(Slot::Foundation)).await {
            Ok(Some(m)) => SlotState::Ready(m),
            Ok(None) => return,
            Err(e) => SlotState::Failed(e),
        },
    };
    if current(Slot::Foundation)() {
        with_state(|s| *s.slot_mut(Slot::Foundation) = state);
        kick();
    }
}

/// Fetches and loads one model. `Ok(None)`: abandoned (a newer `Load` came).
async fn load_model(slot: Slot, source: &Source, precision: Precision, current: &impl Fn() -> bool) -> Result<Option<Model>, String> {
    let result = fetch_and_load(slot, source, precision, current).await;
    match &result {
        Err(message) if current() => post(&FromWorker::LoadFailed { slot, message: message.clone() }),
        _ => {}
    }
    result
}

/// The files of a local pick, by name: (the spec shown, the GGUF file if any).
fn local_layout(files: &[web_sys::File]) -> Result<(String, Option<String>), String> {
    let names: Vec<String> = files.iter().map(|f| f.name()).collect();
    let ggufs: Vec<&String> = names.iter().filter(|n| n.to_ascii_lowercase().ends_with(".gguf")).collect();
    match ggufs.as_slice() {
        [one] => return Ok((format!("local file {one}"), Some(one.to_string()))),
        [] => {}
        many => {
            return Err(format!(
                "Pick one GGUF file, not {} ({}).",
                many.len(),
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))
        }
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    let missing: Vec<&str> = ["config.json", "tokenizer.json"].into_iter().filter(|n| !has(n)).collect();
    let weights = has("model.safetensors") || has("model.safetensors.index.json");
    if names.is_empty() || !missing.is_empty() || !weights {
        let mut what: Vec<&str> = missing;
        if !weights {
            what.push("model.safetensors (or model.safetensors.index.json and its shards)");
        }
        return Err(format!(
            "These files are not a model: missing {}. Pick one .gguf file, or all the files of a checkpoint folder together \
             (config.json, tokenizer.json, tokenizer_config.json, model.safetensors or its shards). You picked: {}.",
            what.join(", "),
            if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
        ));
    }
    Ok((format!("local checkpoint ({} files)", names.len()), None))
}

async fn fetch_and_load(slot: Slot, source: &Source, precision: Precision, current: &impl Fn() -> bool) -> Result<Option<Model>, String> {
    let (spec, repo, gguf) = match source {
        Source::Hub(source, _) => {
            crate::protocol::check_link(&source.hub, &source.revision)?;
            let (repo, gguf) = parse_spec(&source.spec)?;
            (source.spec.clone(), repo, gguf)
        }
        Source::Local(files) => {
            let (spec, gguf) = local_layout(files)?;
            (spec, String::new(), gguf)
        }
    };
    let listing = fetch::Listing::default();
    // `blob`: weights (a GGUF, safetensors), which the engine reads through a
    // `Read + Seek` (the file stays outside wasm memory); small files come as bytes.
    let get = |file: String, optional: bool, blob: bool| {
        let repo = repo.clone();
        let listing = &listing;
        async move {
            match source {
                Source::Hub(source, mode) => {
                    let url = crate::protocol::file_url(&source.hub, &repo, &source.revision, &file);
                    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let tree = crate::protocol::tree_url(&source.hub, &repo, &source.revision, dir);
                    fetch::fetch_file(fetch::FileRequest {
                        slot,
                        url: &url,
                        file: &file,
                        optional,
                        mode: *mode,
                        listing,
                        tree_url: &tree,
                        blob,
                    })
                    .await
                }
                Source::Local(files) => match files.iter().find(|f| f.name() == file) {
                    // A File is a Blob: read in place, slice by slice.
                    Some(f) if blob => {
                        let n = f.size() as u64;
                        post(&FromWorker::Progress { slot, file: file.clone(), done: n, total: Some(n), origin: crate::protocol::Origin::Local });
                        Ok(Some(fetch::Data::Blob(f.clone().into())))
                    }
                    Some(f) => fetch::read_local(slot, f).await.map(|b| Some(fetch::Data::Bytes(b))),
                    None if optional => Ok(None),
                    None => Err(format!("{file} is needed but was not among the files you picked. Pick it together with the others.")),
                },
            }
        }
    };
    let started = js_sys::Date::now();
    let mut model = if let Some(file) = gguf {
        let data = get(file.clone(), false, true).await?.expect("required");
        if !current() {
            return Ok(None);
        }
        post(&FromWorker::Preparing { slot });
        yield_now().await;
        let mut reader = data.into_reader()?;
        LanguageModel::load_gguf(reader.as_mut(), precision).map_err(|e| format!("{file}: {e}"))?
    } else {
        let config = get("config.json".into(), false, false).await?.expect("required").into_bytes()?;
        let tokenizer = get("tokenizer.json".into(), false, false).await?.expect("required").into_bytes()?;
        let tokenizer_config = get("tokenizer_config.json".into(), true, false).await?.map(fetch::Data::into_bytes).transpose()?;
        let generation_config = get("generation_config.json".into(), true, false).await?.map(fetch::Data::into_bytes).transpose()?;
        // Safetensors files stay Blobs (outside wasm memory), read tensor by tensor.
        let shards = match get("model.safetensors".into(), true, true).await? {
            Some(data) => vec![data],
            None => {
                let index = get("model.safetensors.index.json".into(), true, false).await?.map(fetch::Data::into_bytes).transpose()?.ok_or_else(|| {
                    format!("{spec} has neither model.safetensors nor model.safetensors.index.json: is it a model repo?")
                })?;
                let mut shards = vec![];
                for name in shards_from_index(&index).map_err(|e| e.to_string())? {
                    shards.push(get(name, false, true).await?.expect("required"));
                }
                shards
            }
        };
        if !current() {
            return Ok(None);
        }
        post(&FromWorker::Preparing { slot });
        yield_now().await;
        let mut readers = shards.into_iter().map(fetch::Data::into_reader).collect::<Result<Vec<_>, String>>()?;
        let files = CheckpointFiles {
            config_json: &config,
            tokenizer_json: &tokenizer,
            tokenizer_config_json: tokenizer_config.as_deref(),
            generation_config_json: generation_config.as_deref(),
            safetensors: readers.iter_mut().map(|r| &mut **r as &mut dyn crate::engine::ReadSeek).collect(),
        };
        LanguageModel::load(ModelFiles::Checkpoint(files), precision).map_err(|e| e.to_string())?
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
    post(&FromWorker::Loaded {
        slot,
        spec,
        weight_bytes: model.weight_bytes() as u64,
        load_ms: js_sys::Date::now() - started,
    });
    Ok(Some(Rc::new(RefCell::new(model))))
}
