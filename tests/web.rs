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

// ---------------------------------------------------------------- tests

#[wasm_bindgen_test]
async fn tabs_are_aria_tabs_switched_by_click_and_arrow_keys() {
    let _page = Page::open().await;
    let tabs = qa("[role=tablist] [role=tab]");
    let labels: Vec<String> = tabs.iter().map(text).collect();
    assert_eq!(labels, ["Foundation", "Instruct", "Chat", "Prompt", "Compare"]);
    for t in &tabs {
        let panel = q(&format!("#{}", attr(t, "aria-controls").expect("aria-controls")));
        assert_eq!(attr(&panel, "role").as_deref(), Some("tabpanel"));
        assert_eq!(attr(&panel, "aria-labelledby"), Some(t.id()));
    }
    // The Instruct answer is shown first; only the selected tab is in the Tab order.
    assert_eq!(selected_tab(), "tab-instruct");
    assert_eq!(visible_panels(), ["panel-instruct"]);
    let tabindex: Vec<_> = tabs.iter().map(|t| attr(t, "tabindex").unwrap_or_default()).collect();
    assert_eq!(tabindex, ["-1", "0", "-1", "-1", "-1"]);

    click(&q("#tab-chat")).await;
    assert_eq!(selected_tab(), "tab-chat");
    assert_eq!(visible_panels(), ["panel-chat"]);
    assert_eq!(attr(&q("#tab-instruct"), "aria-selected").as_deref(), Some("false"));
    assert_eq!(attr(&q("#tab-chat"), "tabindex").as_deref(), Some("0"));

    // Arrow keys move the selection and the focus, wrapping at both ends; Home / End jump.
    let steps = [
        ("ArrowRight", "tab-prompt"),
        ("ArrowRight", "tab-compare"),
        ("ArrowRight", "tab-foundation"),
        ("ArrowLeft", "tab-compare"),
        ("ArrowLeft", "tab-prompt"),
        ("Home", "tab-foundation"),
        ("End", "tab-compare"),
        ("a", "tab-compare"),
    ];
    for (k, want) in steps {
        let from = q(&format!("#{}", selected_tab()));
        key(&from, k, false).await;
        assert_eq!(selected_tab(), want, "after {k}");
        assert_eq!(active_id(), want, "focus follows {k}");
        assert_eq!(visible_panels(), [want.replace("tab-", "panel-")], "after {k}");
    }
}

#[wasm_bindgen_test]
async fn question_box_default_presets_and_ask_sends_one_job_per_mode() {
    let page = Page::open().await;
    let question = q("#question");
    assert_eq!(value(&question), "What is the capital of France?");

    let presets: Vec<String> = qa("[role=group][aria-label='Example questions'] button").iter().map(text).collect();
    assert_eq!(presets, PRESETS);
    assert!(presets.iter().any(|p| p == "Write a haiku about the sea."));
    let haiku = qa("[role=group] button").into_iter().find(|b| text(b) == "Write a haiku about the sea.").unwrap();
    click(&haiku).await;
    assert_eq!(value(&q("#question")), "Write a haiku about the sea.");

    fill(&question, "Why is the sky blue?", "input").await;
    let stop = q("[data-testid=stop]");
    assert!(is_disabled(&stop), "Stop is disabled while nothing runs");

    // Messages wait until the worker says Ready; the first is the model load.
    assert!(page.take_posted().is_empty(), "nothing is posted before Ready");
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    let first = page.take_posted();
    assert!(matches!(first.first(), Some(ToWorker::Load { .. })), "{first:?}");

    let asks = page.ask().await;
    let modes: Vec<Mode> = asks.iter().map(|a| a.1).collect();
    assert_eq!(modes, [Mode::Foundation, Mode::Instruct, Mode::Chat]);
    for (_, mode, q, messages, max) in &asks {
        assert_eq!(q, "Why is the sky blue?");
        assert_eq!(*max, 30, "{mode:?}: the tutorial's max_new_tokens");
        if *mode == Mode::Chat {
            assert_eq!(messages, &vec![Message::user("Why is the sky blue?")]);
        }
    }
    assert!(!is_disabled(&stop), "Stop is enabled while answers are queued");
    assert_eq!(qa("[role=tab] .dot").len(), 3, "a busy dot on Foundation, Instruct and Chat");
    let instruct = q("#panel-instruct [data-testid=answer]");
    assert_eq!(attr(&instruct, "data-phase").as_deref(), Some("waiting"));
    assert!(text(&instruct).contains("Waiting for the model"));

    // Ctrl+Enter in the question box asks again (after stopping what runs).
    key(&question, "Enter", true).await;
    let again = page.take_posted();
    assert!(matches!(again.first(), Some(ToWorker::Stop)), "{again:?}");
    let again = asks_in(again);
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|a| a.0 > asks[2].0), "new job ids");
    // A plain Enter is a newline, not a question.
    key(&question, "Enter", false).await;
    assert!(page.take_posted().is_empty());
}

#[wasm_bindgen_test]
async fn settings_have_the_tutorial_defaults_and_reach_the_worker() {
    let page = Page::open().await;
    assert_eq!(value(&q("#max-new-tokens")), "30");
    assert_eq!(value(&q("#follow-up-max")), "40");
    assert!(!q("#do-sample").unchecked_into::<HtmlInputElement>().checked(), "greedy by default");
    assert_eq!(value(&q("#temperature")), "0.7");
    assert_eq!(value(&q("#top-p")), "1");
    assert_eq!(value(&q("#top-k")), "0");
    assert_eq!(value(&q("#repetition-penalty")), "1");
    assert_eq!(value(&q("#seed")), "42");
    let precision = q("select#precision");
    assert_eq!(value(&precision), "auto");
    let options: Vec<String> = qa("select#precision option").iter().map(value).collect();
    assert_eq!(options, ["auto", "stored", "f32", "f16", "q8_0"]);

    // A changed setting is what the next Ask uses; garbage is ignored.
    fill(&q("#max-new-tokens"), "5", "change").await;
    fill(&q("#seed"), "not a number", "change").await;
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    page.take_posted();
    let asks = page.ask().await;
    assert!(asks.iter().all(|a| a.4 == 5), "{asks:?}");

    // Changing precision reloads the models with it.
    fill(&precision, "f32", "change").await;
    let posted = page.take_posted();
    let load = posted.iter().find_map(|m| match m {
        ToWorker::Load { precision, .. } => Some(*precision),
        _ => None,
    });
    assert_eq!(load.map(|p| p.name()), Some("f32"), "{posted:?}");
}

#[wasm_bindgen_test]
async fn prompt_tab_highlights_special_tokens_and_renders_markup_as_text() {
    let page = Page::open().await;
    let instruct_view = q("[data-testid=prompt-instruct]");
    assert!(text(&instruct_view).contains("Press Ask to see the prompt."));
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    page.take_posted();
    let asks = page.ask().await;
    let (instruct_job, chat_job) = (asks[1].0, asks[2].0);

    // An untrusted template put markup into the prompt: it must stay text.
    let prompt = "<|im_start|>system\nBe <b>bold</b>.<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"><|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let tok = |id: u32, piece: &str, special: bool| PromptToken { id, piece: piece.into(), special };
    let tokens = vec![
        tok(1, "<|im_start|>", true),
        tok(9690, "system", false),
        tok(198, "\n", false),
        tok(2, "<|im_end|>", true),
        tok(1, "<|im_start|>", true),
        tok(4093, "user", false),
    ];
    page.send(FromWorker::Started { job: instruct_job, prompt: prompt.into(), tokens: tokens.clone() }).await;

    let pre = q("[data-testid=prompt-instruct] pre.prompt");
    assert_eq!(text(&pre), prompt, "the exact prompt string, every character shown");
    let marks: Vec<String> = qa("[data-testid=prompt-instruct] mark.special").iter().map(text).collect();
    assert_eq!(marks, ["<|im_start|>", "<|im_end|>", "<|im_start|>", "<|im_end|>", "<|im_start|>"]);
    for tag in ["b", "script", "img"] {
        assert!(try_q(&format!("[data-testid=prompt-instruct] {tag}")).is_none(), "<{tag}> in a prompt became an element");
    }
    assert!(Reflect::get(&js_sys::global(), &"__pwned".into()).unwrap().is_undefined());
    // Plain text between the special tokens is not highlighted.
    let plain: Vec<String> = qa("[data-testid=prompt-instruct] pre.prompt > span").iter().map(text).collect();
    assert!(plain.iter().any(|s| s.contains("Be <b>bold</b>.")), "{plain:?}");
    assert!(plain.iter().all(|s| !s.contains("<|im_start|>")), "{plain:?}");
    // The chat prompt is separate and not there yet.
    assert!(text(&q("[data-testid=prompt-chat]")).contains("Press Ask to see the prompt."));

    // The token view: one piece per token, special ones marked, with ids.
    click(&q("[data-testid=toggle-tokens]")).await;
    let pieces = qa("[data-testid=prompt-instruct] .piece");
    assert_eq!(pieces.len(), tokens.len());
    assert!(text(&q("[data-testid=prompt-instruct]")).contains("6 tokens"));
    let special: Vec<bool> = pieces.iter().map(|p| p.class_list().contains("special")).collect();
    assert_eq!(special, tokens.iter().map(|t| t.special).collect::<Vec<_>>());
    let ids: Vec<String> = qa("[data-testid=prompt-instruct] .piece sub").iter().map(text).collect();
    assert_eq!(ids, ["1", "9690", "198", "2", "1", "4093"]);
    assert_eq!(text(&pieces[2]), "↵198", "a newline piece is shown as ↵");
    assert!(try_q("[data-testid=prompt-instruct] pre.prompt").is_none());

    page.send(FromWorker::Started { job: chat_job, prompt: "<|im_start|>user\nhi".into(), tokens: vec![tok(1, "<|im_start|>", true)] }).await;
    assert_eq!(qa("[data-testid=prompt-chat] .piece.special").len(), 1);
    click(&q("[data-testid=toggle-tokens]")).await;
    let chat_marks: Vec<String> = qa("[data-testid=prompt-chat] mark.special").iter().map(text).collect();
    assert_eq!(chat_marks, ["<|im_start|>"]);
}

#[wasm_bindgen_test]
async fn answers_stream_as_text_and_say_how_they_ended() {
    let page = Page::open().await;
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    page.take_posted();
    let asks = page.ask().await;
    let (f, i, c) = (asks[0].0, asks[1].0, asks[2].0);

    // Instruct: model output with markup streams in as text.
    page.send(FromWorker::Started { job: i, prompt: "p".into(), tokens: vec![] }).await;
    assert_eq!(attr(&q("#panel-instruct [data-testid=answer]"), "data-phase").as_deref(), Some("reading"));
    page.send(token(i, 10, "<img src=x onerror=\"window.__pwned3 = 1\">")).await;
    page.send(token(i, 11, " & <b>Paris</b>")).await;
    let answer = q("#panel-instruct [data-testid=answer]");
    let answer_text = q("#panel-instruct [data-testid=answer-text]");
    assert_eq!(text(&answer_text), "<img src=x onerror=\"window.__pwned3 = 1\"> & <b>Paris</b>");
    assert_eq!(answer_text.child_element_count(), 0, "model output is never HTML");
    assert_eq!(attr(&answer, "data-phase").as_deref(), Some("streaming"));
    assert_eq!(attr(&answer, "data-token-ids").as_deref(), Some("10,11"));
    assert!(try_q("#panel-instruct .caret").is_some(), "a caret while streaming");
    assert!(try_q("#tab-instruct .dot").is_some(), "the tab shows it is writing");
    page.send(done(i, Some(StopReason::EndOfText), "x")).await;
    assert_eq!(attr(&answer, "data-phase").as_deref(), Some("done"));
    assert!(try_q("#panel-instruct .caret").is_none());
    assert!(try_q("#tab-instruct .dot").is_none());
    assert!(try_q("#panel-instruct [data-testid=ending]").is_none(), "an answer that ended normally needs no words");
    assert!(try_q("#panel-instruct [data-testid=timings]").is_some());
    assert!(Reflect::get(&js_sys::global(), &"__pwned3".into()).unwrap().is_undefined());

    // Foundation: cut at max_new_tokens says so (and the prompt is echoed before the text).
    page.send(FromWorker::Started { job: f, prompt: "What is the capital of France?".into(), tokens: vec![] }).await;
    page.send(token(f, 5, " What is the capital of Germany?")).await;
    page.send(done(f, Some(StopReason::MaxNewTokens), "")).await;
    let ending = text(&q("#panel-foundation [data-testid=ending]"));
    assert!(ending.contains("Cut at max_new_tokens (30)"), "{ending}");
    assert_eq!(text(&q("#panel-foundation .prompt-echo")), "What is the capital of France?");
    assert_eq!(text(&q("#panel-foundation [data-testid=answer-text]")), " What is the capital of Germany?");

    // Chat: the first token was end-of-text: words, not an empty bubble.
    page.send(FromWorker::Started { job: c, prompt: "p".into(), tokens: vec![] }).await;
    page.send(done(c, Some(StopReason::EndOfText), "")).await;
    let ending = text(&q("#panel-chat [data-testid=chat-assistant] [data-testid=ending]"));
    assert!(ending.contains("ended its answer at once"), "{ending}");
    assert!(is_disabled(&q("[data-testid=stop]")), "nothing runs any more");

    // A failure is said in words, in an alert.
    let more = page.ask().await;
    page.send(FromWorker::Failed { job: more[1].0, message: "The prompt is too long for this model (2100 tokens, at most 2048).".into() }).await;
    let alert = text(&q("#panel-instruct [role=alert]"));
    assert!(alert.contains("too long"), "{alert}");
    assert_eq!(attr(&q("#panel-instruct [data-testid=answer]"), "data-phase").as_deref(), Some("failed"));
}

#[wasm_bindgen_test]
async fn an_answer_that_ended_at_once_shows_what_the_model_weighed_as_text() {
    let page = Page::open().await;
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    page.take_posted();
    click(&q("[data-testid=ask]")).await;
    let jobs: Vec<(u64, Mode, usize)> = page
        .take_posted()
        .into_iter()
        .filter_map(|m| match m {
            ToWorker::Ask(Ask { job, prompt, settings, .. }) => Some((job, prompt.mode(), settings.show_candidates)),
            _ => None,
        })
        .collect();
    assert_eq!(jobs.iter().map(|j| j.1).collect::<Vec<_>>(), [Mode::Foundation, Mode::Instruct, Mode::Chat]);
    let (f, i, c) = (jobs[0].0, jobs[1].0, jobs[2].0);
    assert!(jobs[0].2 > 0, "Foundation always asks for candidates (the toggle only shows them)");

    let cand = |id: u32, text: &str, prob: f32| Candidate { id, text: text.into(), logit: 10.0 * prob, prob };
    let why = vec![cand(2, "<|im_end|>", 0.67), cand(198, "\n", 0.16), cand(378, " The", 0.05), cand(9, "<b>x</b>", 0.01)];
    page.send(FromWorker::Started { job: f, prompt: "What is the capital of France?".into(), tokens: vec![] }).await;
    page.send(FromWorker::Done {
        job: f,
        stop_reason: Some(StopReason::EndOfText),
        timings: timings(),
        token_ids: vec![2],
        reply: String::new(),
        end_candidates: why,
        end_prob: Some(0.67),
    })
    .await;
    assert!(text(&q("#panel-foundation [data-testid=ending]")).contains("ended its answer at once"));
    let shown = q("#panel-foundation [data-testid=end-candidates]");
    let chips = qa("#panel-foundation [data-testid=end-candidates] .cand");
    let texts: Vec<String> = chips.iter().map(text).collect();
    assert_eq!(texts, ["\"<|im_end|>\" 67.0%", "\"\\n\" 16.0%", "\" The\" 5.0%", "\"<b>x</b>\" 1.0%"], "special tokens and newlines visible");
    let ids: Vec<Option<String>> = chips.iter().map(|c| attr(c, "data-token-id")).collect();
    assert_eq!(ids, [Some("2".into()), Some("198".into()), Some("378".into()), Some("9".into())]);
    assert!(chips[0].class_list().contains("chosen") && !chips[1].class_list().contains("chosen"), "the picked token is marked");
    assert!(shown.query_selector("b").unwrap().is_none(), "candidates are text, never HTML");
    // The ending words come first, the candidates right under them.
    let ending = q("#panel-foundation [data-testid=ending]");
    assert_eq!(ending.next_element_sibling().map(|e| e.get_attribute("data-testid")), Some(Some("end-candidates".into())));

    // An answer that ended normally, or one sent without candidates, shows none.
    page.send(token(i, 504, "Paris.")).await;
    page.send(FromWorker::Done {
        job: i,
        stop_reason: Some(StopReason::EndOfText),
        timings: timings(),
        token_ids: vec![504, 2],
        reply: "Paris.".into(),
        end_candidates: vec![cand(2, "<|im_end|>", 0.9)],
        end_prob: Some(0.9),
    })
    .await;
    assert!(try_q("#panel-instruct [data-testid=end-candidates]").is_none(), "an answer with text needs no why");
    page.send(done(c, Some(StopReason::EndOfText), "")).await;
    assert!(text(&q("#panel-chat [data-testid=ending]")).contains("ended its answer at once"));
    assert!(try_q("#panel-chat [data-testid=end-candidates]").is_none(), "no candidates were sent");
}

#[wasm_bindgen_test]
async fn chat_shows_bubbles_follow_ups_and_reset() {
    let page = Page::open().await;
    assert!(qa("[data-testid=chat] .bubble").is_empty());
    assert!(text(&q("#panel-chat")).contains("Press Ask to start the conversation."));
    let follow = q("[data-testid=follow-up]");
    assert_eq!(value(&follow), DEFAULT_FOLLOW_UP);
    assert_eq!(value(&follow), "And what is a famous landmark there?");
    let send = q("[data-testid=send-follow-up]");
    assert!(is_disabled(&send), "no follow-up before a first question");

    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    page.take_posted();
    let c = page.ask().await[2].0;
    let users: Vec<String> = qa("[data-testid=chat-user]").iter().map(text).collect();
    assert_eq!(users, ["What is the capital of France?"]);
    assert_eq!(qa("[data-testid=chat-assistant]").len(), 1);
    assert!(!text(&q("#panel-chat")).contains("Press Ask to start"));
    assert!(is_disabled(&send), "no follow-up while the answer is written");

    for (id, t) in [(504, "The capital"), (314, " of France is"), (7042, " Paris.")] {
        page.send(token(c, id, t)).await;
    }
    page.send(done(c, Some(StopReason::EndOfText), "The capital of France is Paris.")).await;
    assert_eq!(text(&q("[data-testid=chat-assistant] [data-testid=answer-text]")), "The capital of France is Paris.");
    assert!(!is_disabled(&send));

    // The follow-up carries the whole history and its own max_new_tokens (40).
    click(&send).await;
    let posted = asks_in(page.take_posted());
    assert_eq!(posted.len(), 1, "{posted:?}");
    let (job2, mode, _, messages, max) = posted[0].clone();
    assert_eq!(mode, Mode::Chat);
    assert_eq!(max, 40);
    assert_eq!(
        messages,
        vec![
            Message::user("What is the capital of France?"),
            Message::assistant("The capital of France is Paris."),
            Message::user("And what is a famous landmark there?"),
        ]
    );
    let users: Vec<String> = qa("[data-testid=chat-user]").iter().map(text).collect();
    assert_eq!(users, ["What is the capital of France?", "And what is a famous landmark there?"]);
    assert_eq!(value(&q("[data-testid=follow-up]")), "", "the box is emptied once sent");

    // Stopped by the user: the bubble says so.
    page.send(token(job2, 1, "The Eiffel")).await;
    page.send(done(job2, None, "The Eiffel")).await;
    let bubbles = qa("[data-testid=chat-assistant]");
    assert_eq!(bubbles.len(), 2);
    assert_eq!(text(&bubbles[1].query_selector("[data-testid=ending]").unwrap().unwrap()), "Stopped.");

    // Enter in the follow-up box sends it too; a system prompt leads the messages.
    fill(&q("[data-testid=system-prompt]"), "You are terse.", "input").await;
    fill(&q("[data-testid=follow-up]"), "And in Italy?", "input").await;
    key(&q("[data-testid=follow-up]"), "Enter", false).await;
    let posted = asks_in(page.take_posted());
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].3.first(), Some(&Message::system("You are terse.")));
    assert_eq!(posted[0].3.last(), Some(&Message::user("And in Italy?")));
    assert_eq!(qa("[data-testid=chat-user]").len(), 3);

    click(&q("[data-testid=reset-chat]")).await;
    assert!(qa("[data-testid=chat] .bubble").is_empty());
    assert!(text(&q("#panel-chat")).contains("Press Ask to start the conversation."));
    assert!(page.take_posted().contains(&ToWorker::Stop), "reset stops the running turn");
}

#[wasm_bindgen_test]
async fn model_status_shows_progress_readiness_and_failure_in_words() {
    let page = Page::open().await;
    let phase = |which: &str| text(&q(&format!("[data-testid=model-{which}] [data-testid=model-phase]")));
    let spec = |which: &str| text(&q(&format!("[data-testid=model-{which}] .spec")));
    // The default models (no URL query) start loading at once.
    assert_eq!(spec("instruct"), "HuggingFaceTB/SmolLM2-135M-Instruct");
    assert_eq!(spec("foundation"), "HuggingFaceTB/SmolLM2-135M");
    assert_eq!(phase("instruct"), "downloading…");
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    let load = page.take_posted().into_iter().find_map(|m| match m {
        ToWorker::Load { foundation, instruct, .. } => Some((foundation, instruct)),
        _ => None,
    });
    let (foundation, instruct) = load.expect("the page asks the worker to load the models");
    assert_eq!(foundation.map(|s| (s.hub, s.spec, s.revision)), Some(("https://huggingface.co".into(), "HuggingFaceTB/SmolLM2-135M".into(), "main".into())));
    assert_eq!(instruct.map(|s| s.spec), Some("HuggingFaceTB/SmolLM2-135M-Instruct".into()));

    page.send(FromWorker::Progress { slot: Slot::Instruct, file: "model.gguf".into(), done: 50, total: Some(200), origin: Origin::Network }).await;
    assert_eq!(phase("instruct"), "downloading…");
    let row = q("[data-testid=model-instruct] [data-testid=file-progress]");
    assert!(text(&row).contains("model.gguf"));
    let bar = row.query_selector("progress").unwrap().unwrap();
    assert_eq!(attr(&bar, "value").as_deref(), Some("50"));
    assert_eq!(attr(&bar, "max").as_deref(), Some("200"));
    page.send(FromWorker::Progress { slot: Slot::Instruct, file: "model.gguf".into(), done: 200, total: Some(200), origin: Origin::Network }).await;
    assert_eq!(qa("[data-testid=model-instruct] [data-testid=file-progress]").len(), 1, "one row per file");
    assert_eq!(attr(&q("[data-testid=model-instruct] progress"), "value").as_deref(), Some("200"));

    page.send(FromWorker::Preparing { slot: Slot::Instruct }).await;
    assert!(phase("instruct").starts_with("preparing the weights"));
    page.send(FromWorker::Loaded { slot: Slot::Instruct, spec: "HuggingFaceTB/SmolLM2-135M-Instruct".into(), weight_bytes: 270_000_000, load_ms: 1500.0, commit: None, context_tokens: 8192 }).await;
    assert!(phase("instruct").starts_with("ready"), "{}", phase("instruct"));
    assert!(phase("instruct").contains("1.5 s"), "{}", phase("instruct"));
    assert!(q("[data-testid=model-instruct]").class_list().contains("ready"));

    // The foundation model fails: its row and its tab say why; the others go on.
    assert!(try_q("[data-testid=foundation-problem]").is_none());
    let why = "HTTP 404 for https://example.test/HuggingFaceTB/SmolLM2-135M/resolve/main/model.safetensors: check the repo name.";
    page.send(FromWorker::LoadFailed { slot: Slot::Foundation, message: why.into() }).await;
    assert_eq!(phase("foundation"), format!("failed: {why}"));
    assert!(q("[data-testid=model-foundation]").class_list().contains("failed"));
    let problem = text(&q("#panel-foundation [data-testid=foundation-problem]"));
    assert!(problem.contains(why) && problem.contains("the other tabs still work"), "{problem}");
}
