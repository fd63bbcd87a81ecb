//! The page's side of the worker: starts it, sends `ToWorker`, turns every
//! `FromWorker` into signal updates, and restarts the worker if it crashes or
//! hangs (a watchdog: silent too long while an answer runs). The page's
//! state, and so the conversation, is kept.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use super::loading::{is_local, load_models};
use super::signals::AppState;
use super::threads::{Build, EngineStatus, Facts};
use super::state::{GenToken, LoadPhase, Phase, StorageInfo};
use crate::protocol::{FromWorker, Slot, StopReason, ToWorker};

/// Trunk's loader for the `worker` bin (next to index.html).
const WORKER_URL: &str = "./worker_loader.js";
/// The threaded build's loader (`scripts/build-worker-mt.sh`), `?threads=N`.
const THREADED_WORKER_URL: &str = "./worker_mt_loader.js";
/// A worker must say `Ready` within this (its module is 3 MB: compiling it
/// takes about a second), or the threaded build gives way to the
/// single-thread one, and a single-thread one is started again.
const START_MS: f64 = 20_000.0;

/// Why a worker was stopped and started again.
enum Stopped {
    /// An error event (a panic, out of memory).
    Crashed,
    /// Silent for this many seconds while working with this model.
    Hung(String, f64),
    /// No `Ready` within this many seconds.
    NeverStarted(f64),
}
/// More crashes than this and the page stops restarting the worker.
const MAX_RESTARTS: u32 = 3;

struct Bridge {
    worker: Worker,
    ready: bool,
    /// Messages sent before the worker said `Ready`.
    pending: Vec<JsValue>,
    /// Restarts since the last answer that ended well.
    restarts: u32,
    /// `Date.now()` of the worker's latest message (the watchdog's clock).
    last_heard_ms: f64,
    /// The threaded build (a failure before `Ready` falls back).
    threaded: bool,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

thread_local! {
    static BRIDGE: RefCell<Option<Bridge>> = const { RefCell::new(None) };
    /// Why the threaded build failed to start in this page (then it is not tried again).
    static THREADED_FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Starts the worker and asks it to load the models, and the watchdog.
pub fn start(state: AppState) {
    spawn(state, 0);
    load_models(state);
    let check = Closure::<dyn FnMut()>::new(move || watchdog(state));
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(check.as_ref().unchecked_ref(), 1000);
    }
    check.forget();
}

/// Restarts a worker that has been silent longer than its work allows
/// (`state::allowed_silence`): a template or a model that never finishes a
/// step would otherwise leave an answer "writing" or a model "preparing"
/// forever.
fn watchdog(state: AppState) {
    let never_ready = BRIDGE.with(|b| b.borrow().as_ref().filter(|b| !b.ready && js_sys::Date::now() - b.last_heard_ms > START_MS).map(|b| b.threaded));
    match never_ready {
        Some(true) => return fall_back(state, format!("it said nothing for {:.0} s", START_MS / 1000.0)),
        Some(false) => return restart(state, Stopped::NeverStarted(START_MS / 1000.0)),
        None => {}
    }
    // Before `Ready`, START_MS rules (nothing runs yet).
    let Some(silent_ms) = BRIDGE.with(|b| b.borrow().as_ref().filter(|b| b.ready).map(|b| js_sys::Date::now() - b.last_heard_ms)) else { return };
    let (f, i) = (state.foundation_model.get_untracked(), state.instruct_model.get_untracked());
    let (fa, ia, chat) = (state.foundation.get_untracked(), state.instruct.get_untracked(), state.chat.get_untracked());
    let grid = state.grid.get_untracked();
    let mut answers = vec![(&fa, &f), (&ia, &i), (&grid.instruct_raw, &i), (&grid.foundation_templated, &f)];
    answers.extend(chat.iter().map(|t| (&t.answer, &i)));
    let base_ms = state.config.with_value(|c| c.watchdog_s) * 1000.0;
    if let Some((spec, allowed_ms)) = super::state::allowed_silence(&answers, &[&f, &i], base_ms) {
        if silent_ms > allowed_ms {
            restart(state, Stopped::Hung(spec, silent_ms / 1000.0));
        }
    }
}

/// The build this page can run (`threads::choose`).
fn choose_build(state: AppState) -> Build {
    let global = js_sys::global();
    let has = |name: &str| js_sys::Reflect::get(&global, &name.into()).map(|v| v.is_truthy()).unwrap_or(false);
    let config = state.config.get_value();
    super::threads::choose(&Facts {
        isolated: has("crossOriginIsolated"),
        shared_memory: has("SharedArrayBuffer"),
        asked: state.settings.with_untracked(|s| s.threads),
        isolation_off: config.isolation_off,
        failed: THREADED_FAILED.with(|f| f.borrow().clone()),
    })
}

/// The threaded build failed before it was ready: the single-thread build
/// takes over, with the messages that were waiting for it.
fn fall_back(state: AppState, why: String) {
    web_sys::console::warn_1(&format!("threaded engine: {why}; the single-thread engine takes over").into());
    THREADED_FAILED.with(|f| *f.borrow_mut() = Some(why));
    let Some(old) = BRIDGE.with(|b| b.borrow_mut().take()) else { return };
    old.worker.terminate();
    spawn(state, old.restarts);
    BRIDGE.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.pending = old.pending;
        }
    });
}

/// Starts the worker again with the Settings' thread count (the page's
/// state is kept; answers being written end, and the models load again).
pub fn use_threads(state: AppState) {
    if let Some(old) = BRIDGE.with(|b| b.borrow_mut().take()) {
        old.worker.terminate();
    }
    end_busy_answers(state, "The engine was restarted with another thread count.");
    spawn(state, 0);
    load_models(state);
}

fn spawn(state: AppState, restarts: u32) {
    let build = choose_build(state);
    let url = match &build {
        Build::Threaded { asked } => format!("{THREADED_WORKER_URL}?threads={asked}"),
        Build::Single { .. } => WORKER_URL.to_string(),
    };
    let threaded = matches!(build, Build::Threaded { .. });
    state.engine.set(EngineStatus { build: Some(build), threads: None, note: None });
    let worker = match Worker::new(&url) {
        Ok(w) => w,
        Err(_) => {
            state.notice.set(Some("This browser could not start the model worker (web workers are needed).".into()));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        match FromWorker::from_json(&text) {
            Ok(msg) => receive(state, msg),
            Err(e) => web_sys::console::error_1(&e.into()),
        }
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
        ev.prevent_default();
        web_sys::console::error_1(&format!("worker error: {}", ev.message()).into());
        let starting = BRIDGE.with(|b| b.borrow().as_ref().is_some_and(|b| b.threaded && !b.ready));
        let message = ev.message();
        // Leave the handler first: a restart replaces this very closure.
        wasm_bindgen_futures::spawn_local(async move {
            if starting {
                fall_back(state, if message.is_empty() { "its script or module did not load".into() } else { message });
            } else {
                restart(state, Stopped::Crashed)
            }
        });
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    BRIDGE.with(|b| {
        let last_heard_ms = js_sys::Date::now();
        *b.borrow_mut() = Some(Bridge { worker, ready: false, pending: vec![], restarts, last_heard_ms, threaded, _on_message: on_message, _on_error: on_error });
    });
}

/// The model an answer is being written with, or the one being loaded: what
/// a crash is most likely about.
fn model_at_work(state: AppState) -> Option<String> {
    let busy = |slot: Slot| match slot {
        Slot::Foundation => state.foundation.with_untracked(|a| a.phase.busy()),
        Slot::Instruct => state.instruct.with_untracked(|a| a.phase.busy()) || state.chat.with_untracked(|c| c.iter().any(|t| t.answer.phase.busy())),
    };
    let loading = |slot: Slot| state.model(slot).with_untracked(|m| matches!(m.phase, LoadPhase::Downloading | LoadPhase::Preparing));
    [Slot::Instruct, Slot::Foundation]
        .into_iter()
        .find(|&s| busy(s) && state.model(s).with_untracked(|m| matches!(m.phase, LoadPhase::Ready { .. })))
        .or_else(|| [Slot::Instruct, Slot::Foundation].into_iter().find(|&s| loading(s)))
        .map(|s| state.model(s).with_untracked(|m| m.spec.clone()))
}

/// The worker crashed, hung or never started (`stopped`): stop it, fail the
/// answers it was writing in words, and start a fresh one, up to
/// [`MAX_RESTARTS`] times in a row without an answer that ended well.
fn restart(state: AppState, stopped: Stopped) {
    let model = match &stopped {
        Stopped::Hung(spec, _) => Some(spec.clone()),
        _ => model_at_work(state),
    };
    let restarts = BRIDGE.with(|b| {
        let old = b.borrow_mut().take();
        old.map(|o| {
            o.worker.terminate();
            o.restarts
        })
    });
    let restarts = restarts.unwrap_or(0) + 1;
    let with = model.map(|m| format!(" with {m}")).unwrap_or_default();
    let why = match &stopped {
        Stopped::Hung(_, secs) => format!(
            "The model worker stopped responding for {secs:.0} s while working{with} (its chat template or its weights may keep it busy forever, or a file read that never ends), so it was stopped."
        ),
        Stopped::Crashed => format!("The model worker crashed while working{with} (it may have run out of memory, or a file or template made it fail)."),
        Stopped::NeverStarted(secs) => format!("The model worker did not start within {secs:.0} s (its script or module may not have loaded), so it was stopped."),
    };
    end_busy_answers(state, &why);
    if restarts > MAX_RESTARTS {
        let words = format!(
            "{why} That happened {restarts} times in a row, so the worker was not started again: try another model or a smaller precision (stored or q8_0) in Settings, close other tabs, or reload the page. Your question and chat are still here."
        );
        // No worker will finish these loads: say so rather than "downloading…" forever.
        for slot in [Slot::Instruct, Slot::Foundation] {
            state.model(slot).update(|m| {
                if matches!(m.phase, LoadPhase::Downloading | LoadPhase::Preparing) {
                    m.phase = LoadPhase::Failed(words.clone());
                }
            });
        }
        state.notice.set(Some(words));
        return;
    }
    state.notice.set(Some(format!("{why} It was restarted and the models are loading again. Your question and the chat are kept.")));
    spawn(state, restarts);
    load_models(state);
}

/// Every answer being written fails with `why` (its worker was stopped).
fn end_busy_answers(state: AppState, why: &str) {
    for sig in [state.foundation, state.instruct] {
        if sig.with_untracked(|a| a.phase.busy()) {
            sig.update(|a| a.phase = Phase::Failed(format!("{why} Press Ask to try again.")));
        }
    }
    state.chat.update(|c| {
        for t in c.iter_mut().filter(|t| t.answer.phase.busy()) {
            t.answer.phase = Phase::Failed(format!("{why} Send it again to retry."));
        }
    });
    state.grid.update(|g| {
        for a in [&mut g.instruct_raw, &mut g.foundation_templated].into_iter().filter(|a| a.phase.busy()) {
            a.phase = Phase::Failed(format!("{why} Open the tab again after the next Ask."));
        }
    });
}

/// Answers cannot be written: the worker was not restarted after its crashes.
pub(super) fn worker_gone(state: AppState) -> bool {
    let gone = BRIDGE.with(|b| b.borrow().is_none());
    if gone {
        state.notice.set(Some(
            "The model worker is stopped after repeated crashes, so nothing can be answered: reload the page to start it again (copy your question first: a reload forgets it).".into(),
        ));
    }
    gone
}

pub fn send(msg: &ToWorker) {
    post(JsValue::from_str(&msg.to_json()));
}

pub(super) fn post(value: JsValue) {
    BRIDGE.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            if b.ready {
                let _ = b.worker.post_message(&value);
            } else {
                b.pending.push(value);
            }
        }
    });
}

pub fn list_cache() {
    send(&ToWorker::ListCache);
}

pub fn delete_cached(model: String) {
    send(&ToWorker::DeleteCached { model });
}

fn receive(state: AppState, msg: FromWorker) {
    BRIDGE.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.last_heard_ms = js_sys::Date::now();
            if matches!(msg, FromWorker::Done { stop_reason: Some(_), .. }) {
                b.restarts = 0; // an answer ended well: the worker is healthy
            }
        }
    });
    match msg {
        FromWorker::Ready { threads, note } => {
            state.engine.update(|e| (e.threads, e.note) = (Some(threads), note));
            let pending = BRIDGE.with(|b| {
                let mut b = b.borrow_mut();
                let b = b.as_mut().expect("the bridge exists while its worker talks");
                b.ready = true;
                std::mem::take(&mut b.pending)
            });
            for value in pending {
                BRIDGE.with(|b| {
                    if let Some(b) = b.borrow().as_ref() {
                        let _ = b.worker.post_message(&value);
                    }
                });
            }
        }
        FromWorker::Progress { slot, file, done, total, origin } => {
            state.model(slot).update(|m| m.progress(file, done, total, origin, js_sys::Date::now()))
        }
        FromWorker::Warning { slot, message } => state.model(slot).update(|m| m.warning = Some(message)),
        FromWorker::Storage { files, usage, quota, message } => state.storage.update(|s| {
            *s = StorageInfo { files, usage, quota, message, persisted: s.persisted };
        }),
        FromWorker::Preparing { slot } => state.model(slot).update(|m| m.phase = LoadPhase::Preparing),
        FromWorker::DownloadNeeded { sizes } => {
            for (slot, bytes) in sizes {
                state.model(slot).update(|m| m.phase = LoadPhase::AskFirst { bytes });
            }
        }
        FromWorker::NewerCommit { slot, commit, .. } => state.model(slot).update(|m| m.newer = Some(commit)),
        FromWorker::Loaded { slot, spec, weight_bytes, load_ms, commit, context_tokens } => {
            state.model(slot).update(|m| {
                if !is_local(slot) {
                    m.spec = spec;
                }
                m.commit = commit;
                m.context_tokens = context_tokens;
                m.phase = LoadPhase::Ready { weight_bytes, load_ms };
            });
            if state.storage_open.get_untracked() {
                list_cache();
            }
        }
        FromWorker::LoadFailed { slot, message } => state.model(slot).update(|m| m.phase = LoadPhase::Failed(message)),
        FromWorker::Started { job, prompt, tokens, .. } => state.with_answer(job, |a| {
            a.prompt = prompt;
            a.prompt_tokens = tokens;
            a.phase = Phase::Reading;
        }),
        FromWorker::Forced { job, texts } => state.with_answer(job, |a| {
            a.text = texts.concat();
            for (t, text) in a.tokens.iter_mut().zip(texts) {
                t.text = text;
            }
        }),
        FromWorker::Token { job, id, text, candidates, end_prob } => state.with_answer(job, |a| {
            a.phase = Phase::Streaming;
            a.end_probs.push(end_prob);
            a.text.push_str(&text);
            a.tokens.push(GenToken { id, text, candidates });
        }),
        FromWorker::Done { job, stop_reason, timings, token_ids, reply, end_candidates, end_prob } => {
            let ended_well = stop_reason.is_some();
            state.with_answer(job, |a| {
                a.end_probs.extend(end_prob);
                a.generated_ids = token_ids.clone();
                a.phase = match stop_reason {
                    Some(r) => Phase::Done(r),
                    None => Phase::Stopped,
                };
                // The end-of-text id the model picked ends `token_ids`.
                a.end_step = match (stop_reason, token_ids.last(), end_candidates.is_empty()) {
                    (Some(StopReason::EndOfText), Some(&id), false) => {
                        let text = end_candidates.iter().find(|c| c.id == id).map(|c| c.text.clone()).unwrap_or_default();
                        Some(GenToken { id, text, candidates: end_candidates })
                    }
                    _ => None,
                };
                if timings.prompt_tokens > 0 {
                    a.timings = Some(timings);
                }
                a.reply = reply;
            });
            if ended_well {
                super::asking::next_follow_up(state, job);
            }
        }
        FromWorker::Scored { job, scores } => state.shift.update(|s| {
            if s.job == Some(job) {
                s.scores = Some(scores);
            }
        }),
        FromWorker::Inspected { source, report } => state.reports.update(|r| {
            r.retain(|(s, _)| *s != source);
            r.push((source, report));
        }),
        FromWorker::Failed { job, message } => {
            state.shift.update(|s| {
                if s.job == Some(job) {
                    s.failed = Some(message.clone());
                }
            });
            state.with_answer(job, |a| a.phase = Phase::Failed(message));
        }
    }
}
