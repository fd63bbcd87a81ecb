//! The web worker: the engine's only home in the browser. It fetches the model
//! files itself ([`fetch`]), loads them with the engine ([`load`]), and drives
//! generation one token per tick, yielding a macrotask between tokens so a
//! `Stop` (or any message) is handled promptly. It speaks only [`crate::protocol`].
//!
//! State lives in one thread-local; message handlers and the async loops
//! (loading, generating) take short borrows of it and never across an await.

mod cache;
mod data;
mod fetch;
mod hub;
mod inspect;
mod load;
#[cfg(target_feature = "atomics")]
mod pool;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::{LanguageModel, Step};
use crate::protocol::{Ask, FromWorker, PromptToken, Slot, StopReason, ToWorker};

type Model = Rc<RefCell<LanguageModel>>;

#[derive(Clone)]
enum SlotState {
    /// No model asked for (or not yet).
    Empty,
    Loading,
    Ready(Model),
    Failed(String),
}

struct State {
    /// Per slot, by `Slot::index`.
    slots: [SlotState; 2],
    queue: VecDeque<Ask>,
    /// A generation loop is running.
    running: bool,
    /// Set by `Stop`: the running job ends at its next tick.
    stop: bool,
    /// Bumped by every `Load`/`LoadLocal`: jobs of an older epoch give up.
    epoch: u64,
    /// Per slot, bumped by every load of that slot: a load holding an older
    /// ticket gives up (a newer one replaced it).
    load_tickets: [u64; 2],
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State {
        slots: [SlotState::Empty, SlotState::Empty],
        queue: VecDeque::new(),
        running: false,
        stop: false,
        epoch: 0,
        load_tickets: [0, 0],
    }) };
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
    #[cfg(target_feature = "atomics")]
    if pool::in_pool_thread() {
        return;
    }
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        // A string, or `[json, [File, ...]]` for `LoadLocal`.
        let data = ev.data();
        let (text, files) = match data.dyn_ref::<js_sys::Array>() {
            Some(a) => (a.get(0).as_string(), a.get(1).dyn_into::<js_sys::Array>().ok()),
            None => (data.as_string(), None),
        };
        let files: Vec<web_sys::File> = files.map(|a| a.iter().filter_map(|f| f.dyn_into().ok()).collect()).unwrap_or_default();
        match text.map(|t| ToWorker::from_json(&t)) {
            Some(Ok(msg)) => handle(msg, files),
            Some(Err(e)) => web_sys::console::error_1(&e.into()),
            None => web_sys::console::error_1(&"a message to the worker that is not text".into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    #[cfg(target_feature = "atomics")]
    spawn_local(start_pool_then_ready());
    #[cfg(not(target_feature = "atomics"))]
    post(&FromWorker::Ready { threads: 1, note: None });
}

/// The threaded build: starts the helpers, then says `Ready` once they all
/// run (or after 10 s, with how many do). Helpers start only once this
/// worker's event loop runs, so this waits asynchronously.
#[cfg(target_feature = "atomics")]
async fn start_pool_then_ready() {
    use crate::engine::kernels::spin_pool::helpers;
    let asked = pool::asked_threads(scope().navigator().hardware_concurrency() as usize);
    let started = pool::start(asked);
    for _ in 0..500 {
        if started.is_err() || helpers() + 1 >= asked {
            break;
        }
        fetch::sleep_ms(20).await;
    }
    let threads = helpers() + 1;
    let note = match started {
        Err(e) => Some(format!("{asked} threads were asked for, {threads} run: {e}.")),
        Ok(()) if threads < asked => Some(format!("{asked} threads were asked for; {threads} started within 10 s.")),
        Ok(()) => None,
    };
    post(&FromWorker::Ready { threads, note });
}

/// One message from the page; `files` are the File handles `LoadLocal` carries.
fn handle(msg: ToWorker, files: Vec<web_sys::File>) {
    match msg {
        ToWorker::Load { foundation, instruct, precision, cache, ask_first, fresh } => {
            let tickets = begin_load(&[(Slot::Foundation, foundation.is_some()), (Slot::Instruct, instruct.is_some())]);
            spawn_local(load::load_hub(tickets, foundation, instruct, load::LoadOptions { precision, mode: cache, ask_first, fresh }));
        }
        ToWorker::LoadLocal { slot, precision } => {
            let tickets = begin_load(&[(slot, true)]);
            spawn_local(async move {
                load::load_slot(slot, &load::Source::Local(files), precision, tickets[slot.index()]).await;
            });
        }
        ToWorker::ListCache => spawn_local(send_storage(None)),
        ToWorker::DeleteCached { model } => spawn_local(async move {
            let message = match cache::delete_model(&model).await {
                Ok(n) => format!("Deleted {n} cached file(s) of {model}."),
                Err(e) => format!("Could not delete {model} from the cache: {e}"),
            };
            send_storage(Some(message)).await;
        }),
        ToWorker::Ask(ask) => {
            with_state(|s| s.queue.push_back(ask));
            kick();
        }
        ToWorker::Inspect { source } => spawn_local(inspect::inspect(source)),
        ToWorker::Stop => {
            with_state(|s| s.stop = s.running);
            drop_queue();
        }
    }
}

/// A load replaces `slots` (`true`: loading; `false`: no model): the running
/// answer stops, queued ones end, and older loads of those slots give up.
fn begin_load(slots: &[(Slot, bool)]) -> [u64; 2] {
    let tickets = with_state(|s| {
        s.epoch += 1;
        s.stop = s.running;
        for &(slot, wanted) in slots {
            s.load_tickets[slot.index()] += 1;
            s.slots[slot.index()] = if wanted { SlotState::Loading } else { SlotState::Empty };
        }
        s.load_tickets
    });
    drop_queue();
    tickets
}

/// What the page gets for an answer that was stopped or never started.
fn stopped(job: u64) -> FromWorker {
    FromWorker::Done { job, stop_reason: None, timings: Default::default(), token_ids: vec![], reply: String::new(), end_candidates: vec![], end_prob: None }
}

/// Ends every queued (not yet started) job as stopped.
fn drop_queue() {
    let dropped: Vec<Ask> = with_state(|s| s.queue.drain(..).collect());
    for ask in dropped {
        post(&stopped(ask.job));
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
            let slot = s.queue.front()?.slot();
            if matches!(s.slots[slot.index()], SlotState::Loading) {
                return None;
            }
            let ask = s.queue.pop_front()?;
            s.stop = false;
            Some((ask, slot, s.slots[slot.index()].clone(), s.epoch))
        });
        let Some((ask, slot, slot_state, epoch)) = next else { break };
        let job = ask.job;
        let result = match slot_state {
            SlotState::Ready(model) => run_job(&model, ask, epoch).await,
            SlotState::Failed(why) => Err(format!("The {} model is not available: {why}", slot_name(slot))),
            SlotState::Empty => Err(match slot {
                Slot::Foundation => "No foundation model is set (the `foundation` setting is empty), so there is no foundation answer.".to_string(),
                Slot::Instruct => "No instruct model is loaded yet.".to_string(),
            }),
            SlotState::Loading => unreachable!("checked above"),
        };
        if let Err(message) = result {
            post(&FromWorker::Failed { job, message });
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
async fn run_job(model: &Model, ask: Ask, epoch: u64) -> Result<(), String> {
    let Ask { job, prompt, settings, score, force, .. } = ask;
    let err = |e: crate::engine::EngineError| e.to_string();
    if let Some(answer) = score {
        let m = &mut *model.borrow_mut();
        let ids = m.tokenizer.encode(&prompt.text(m).map_err(err)?).map_err(err)?;
        post(&FromWorker::Scored { job, scores: m.score(&ids, &answer).map_err(err)? });
        return Ok(());
    }
    // The prompt's text and ids, once: shown to the page, then run.
    let (text, ids, tokens) = {
        let m = model.borrow();
        let text = prompt.text(&m).map_err(err)?;
        let ids = m.tokenizer.encode(&text).map_err(err)?;
        let tokens = ids.iter().map(|&id| PromptToken { id, piece: m.tokenizer.piece(id), special: m.tokenizer.is_special(id) }).collect();
        (text, ids, tokens)
    };
    post(&FromWorker::Started { job, prompt: text, tokens });
    yield_now().await;
    let stop_asked = || with_state(|s| s.stop || s.epoch != epoch);
    if stop_asked() {
        post(&stopped(job));
        return Ok(());
    }
    let mut g = match force.is_empty() {
        true => model.borrow_mut().start_ids(ids, settings).map_err(err)?,
        false => {
            let (g, texts) = model.borrow_mut().start_branch(ids, &force, settings).map_err(err)?;
            post(&FromWorker::Forced { job, texts });
            g
        }
    };
    loop {
        yield_now().await;
        let reason = if stop_asked() {
            None
        } else {
            match model.borrow_mut().next_token(&mut g).map_err(err)? {
                Step::Token { id, text, candidates, end_prob } => {
                    post(&FromWorker::Token { job, id, text, candidates, end_prob });
                    continue;
                }
                Step::Done(reason) => Some(reason),
            }
        };
        let reply = model.borrow().tokenizer.decode(g.generated_ids(), true).map_err(err)?;
        post(&FromWorker::Done {
            job,
            stop_reason: reason,
            timings: g.timings().clone(),
            token_ids: g.generated_ids().to_vec(),
            reply,
            end_candidates: g.end_candidates().to_vec(),
            // The step that picked end-of-text has no Token message of its own.
            end_prob: (reason == Some(StopReason::EndOfText)).then(|| g.end_probs().last().copied()).flatten(),
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
