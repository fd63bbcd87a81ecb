//! Component tests of the page (src/app) in headless Chromium:
//! `scripts/test-web-components.sh` (wasm-bindgen-test-runner + chromedriver).
//!
//! Each test mounts the real page (`three_answers::app::mount`: the real
//! components, signals, bridge and DOM) with one thing replaced: the browser's
//! `Worker` constructor, by a scripted stand-in that records what the page
//! posts and lets the test deliver `FromWorker` messages (built with the real
//! protocol types). No model runs here; `tests/e2e/` covers the real worker.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use js_sys::{Array, Function, Promise, Reflect};
use three_answers::app::text::{DEFAULT_FOLLOW_UP, PRESETS};
use three_answers::protocol::{Ask, Candidate, FromWorker, Message, Mode, Origin, Prompt, PromptToken, Slot, StopReason, Timings, ToWorker};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlInputElement, Node};

wasm_bindgen_test_configure!(run_in_browser);

mod answers;
mod models;
mod question;

// ---------------------------------------------------------------- harness

thread_local! {
    /// The nodes the previous test's page added to <body> (removed by the next).
    static MOUNTED: RefCell<Vec<Node>> = const { RefCell::new(vec![]) };
}

fn js(args: &str, body: &str) -> Function {
    Function::new_with_args(args, body)
}

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// Replaces `window.Worker` (once) with a recorder: `posted` keeps what the
/// page sends; the test calls the page's `onmessage` itself.
fn install_fake_worker() {
    js(
        "",
        "if (globalThis.__fakeWorkers) return;
         globalThis.__fakeWorkers = [];
         globalThis.Worker = class FakeWorker {
           constructor(url) { this.url = url; this.posted = []; this.onmessage = null; this.onerror = null;
                              this.terminated = false; globalThis.__fakeWorkers.push(this); }
           postMessage(v) { this.posted.push(v); }
           terminate() { this.terminated = true; }
           addEventListener() {}
           removeEventListener() {}
         };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
}

/// Resolves after `ms` (a macrotask: Leptos' effects and microtasks have run).
async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

async fn settle() {
    sleep(0).await;
    sleep(0).await;
}

/// One mounted page and its stand-in worker.
struct Page {
    worker: JsValue,
}

impl Page {
    async fn open() -> Page {
        install_fake_worker();
        let body = document().body().unwrap();
        // Remove the previous test's page (kept until now so a failure can be looked at).
        MOUNTED.with(|m| {
            for n in m.borrow_mut().drain(..) {
                if let Some(p) = n.parent_node() {
                    let _ = p.remove_child(&n);
                }
            }
        });
        // The page writes its settings into the address (precision, models):
        // each test starts from the bare address, as a fresh visit does.
        let location = web_sys::window().unwrap().location();
        let bare = location.pathname().unwrap();
        web_sys::window().unwrap().history().unwrap().replace_state_with_url(&JsValue::NULL, "", Some(&bare)).unwrap();
        let before = body.last_child();
        three_answers::app::mount();
        let mut added = vec![];
        let mut next = match &before {
            Some(n) => n.next_sibling(),
            None => body.first_child(),
        };
        while let Some(n) = next {
            next = n.next_sibling();
            added.push(n);
        }
        assert!(!added.is_empty(), "mount() added nothing to <body>");
        MOUNTED.with(|m| *m.borrow_mut() = added);
        let workers: Array = Reflect::get(&js_sys::global(), &"__fakeWorkers".into()).unwrap().unchecked_into();
        assert!(workers.length() > 0, "the page did not start a worker");
        let worker = workers.get(workers.length() - 1);
        settle().await;
        Page { worker }
    }

    /// Delivers one worker message to the page, as the real worker posts it (a JSON string).
    async fn send(&self, msg: FromWorker) {
        js("w, data", "w.onmessage(new MessageEvent('message', { data }))")
            .call2(&JsValue::NULL, &self.worker, &JsValue::from_str(&msg.to_json()))
            .unwrap();
        settle().await;
    }

    /// What the page posted since the last call (string messages, parsed).
    fn take_posted(&self) -> Vec<ToWorker> {
        let posted: Array = js("w", "return w.posted.splice(0)").call1(&JsValue::NULL, &self.worker).unwrap().unchecked_into();
        posted
            .iter()
            .filter_map(|v| v.as_string())
            .map(|s| ToWorker::from_json(&s).unwrap_or_else(|e| panic!("{e}: {s}")))
            .collect()
    }

    /// The page asks: Ready, click Ask, and return the three `Ask` messages (foundation, instruct, chat).
    async fn ask(&self) -> Vec<(u64, Mode, String, Vec<Message>, usize)> {
        click(&q("[data-testid=ask]")).await;
        let asks = asks_in(self.take_posted());
        assert_eq!(asks.len(), 3, "Ask sends one job per mode: {asks:?}");
        asks
    }
}

fn asks_in(posted: Vec<ToWorker>) -> Vec<(u64, Mode, String, Vec<Message>, usize)> {
    posted
        .into_iter()
        .filter_map(|m| match m {
            // (job, mode, the question or the chat's last message, the chat's messages, max_new_tokens)
            ToWorker::Ask(Ask { job, prompt, settings, .. }) => {
                let (question, messages) = match &prompt {
                    Prompt::Raw(q) | Prompt::Instruct(q) => (q.clone(), vec![]),
                    Prompt::Chat(c) => (c.turns.last().map(|m| m.content.clone()).unwrap_or_default(), c.messages()),
                };
                Some((job, prompt.mode(), question, messages, settings.max_new_tokens))
            }
            _ => None,
        })
        .collect()
}

fn try_q(sel: &str) -> Option<Element> {
    document().query_selector(sel).unwrap()
}

fn q(sel: &str) -> Element {
    try_q(sel).unwrap_or_else(|| panic!("no element matches {sel}"))
}

fn qa(sel: &str) -> Vec<Element> {
    let found: Array = js("sel", "return Array.from(document.querySelectorAll(sel))").call1(&JsValue::NULL, &sel.into()).unwrap().unchecked_into();
    found.iter().map(|v| v.unchecked_into()).collect()
}

fn text(el: &Element) -> String {
    el.text_content().unwrap_or_default()
}

fn prop(el: &Element, name: &str) -> JsValue {
    Reflect::get(el, &name.into()).unwrap()
}

fn value(el: &Element) -> String {
    prop(el, "value").as_string().unwrap_or_default()
}

fn attr(el: &Element, name: &str) -> Option<String> {
    el.get_attribute(name)
}

async fn click(el: &Element) {
    el.unchecked_ref::<HtmlElement>().click();
    settle().await;
}

async fn key(el: &Element, key: &str, ctrl: bool) {
    js("el, key, ctrlKey", "el.dispatchEvent(new KeyboardEvent('keydown', { key, ctrlKey, bubbles: true, cancelable: true }))")
        .call3(&JsValue::NULL, el, &key.into(), &ctrl.into())
        .unwrap();
    settle().await;
}

/// Types `v` into an input or textarea (`event` is "input" or "change").
async fn fill(el: &Element, v: &str, event: &str) {
    js("el, v, type", "el.value = v; el.dispatchEvent(new Event(type, { bubbles: true }))")
        .call3(&JsValue::NULL, el, &v.into(), &event.into())
        .unwrap();
    settle().await;
}

fn is_disabled(el: &Element) -> bool {
    prop(el, "disabled").as_bool().unwrap()
}

fn timings() -> Timings {
    Timings { prompt_tokens: 12, reused_tokens: 0, prefill_ms: 40.0, generated_tokens: 3, decode_ms: 60.0 }
}

fn token(job: u64, id: u32, text: &str) -> FromWorker {
    FromWorker::Token { job, id, text: text.into(), candidates: vec![], end_prob: 0.001 }
}

fn done(job: u64, stop_reason: Option<StopReason>, reply: &str) -> FromWorker {
    FromWorker::Done { job, stop_reason, timings: timings(), token_ids: vec![], reply: reply.into(), end_candidates: vec![], end_prob: None }
}

/// The id of the one tab with aria-selected="true".
fn selected_tab() -> String {
    let sel: Vec<_> = qa("[role=tab]").into_iter().filter(|t| attr(t, "aria-selected").as_deref() == Some("true")).collect();
    assert_eq!(sel.len(), 1, "exactly one tab is selected");
    sel[0].id()
}

fn visible_panels() -> Vec<String> {
    qa("[role=tabpanel]").into_iter().filter(|p| !p.has_attribute("hidden")).map(|p| p.id()).collect()
}

fn active_id() -> String {
    document().active_element().map(|e| e.id()).unwrap_or_default()
}
