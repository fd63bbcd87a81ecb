//! The components, top to bottom as the page shows them: header and model
//! status, the question box, settings, the four tabs and their panels.
//! Model output and templates are untrusted: always text nodes, never HTML.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use super::bridge;
use super::state::{Answer, AppState, LoadPhase, ModelStatus, Phase, Tab};
use super::text::{self, page_config, split_special, PRESETS};
use crate::protocol::{Candidate, Origin, Slot, StopReason};

fn state() -> AppState {
    expect_context::<AppState>()
}

fn query_pairs() -> Vec<(String, String)> {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else { return vec![] };
    let mut out = vec![];
    for k in ["hub", "foundation", "instruct", "q", "precision", "revision", "cache"] {
        if let Some(v) = params.get(k) {
            out.push((k.to_string(), v));
        }
    }
    out
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new(page_config(&query_pairs()));
    provide_context(state);
    bridge::start(state);
    view! {
        <header class="top">
            <h1>"One question, three answers"</h1>
            <p class="lede">
                "The same small model family (SmolLM2-135M) asked the same question three ways, "
                "running on your own computer inside this page. Nothing you type leaves your browser."
            </p>
        </header>
        <Notice/>
        <ModelPanel/>
        <QuestionBox/>
        <SettingsPanel/>
        <Tabs/>
        <footer class="foot">"Models run in a web worker with candle (Rust → WebAssembly)."</footer>
    }
}

#[component]
fn Notice() -> impl IntoView {
    let s = state();
    move || {
        s.notice.get().map(|n| {
            view! {
                <div class="notice" role="status" data-testid="notice">
                    <span>{n}</span>
                    <button class="link" on:click=move |_| s.notice.set(None) aria-label="Dismiss">"×"</button>
                </div>
            }
        })
    }
}

#[component]
fn ModelPanel() -> impl IntoView {
    let s = state();
    view! {
        <section class="models" aria-label="Model status">
            <ModelRow label="Instruct / chat model" status=s.instruct_model which=Slot::Instruct/>
            <ModelRow label="Foundation model" status=s.foundation_model which=Slot::Foundation/>
            <p class="small">
                "Use files from this computer: pick or drop one .gguf file, or all the files of a checkpoint folder "
                "(config.json, tokenizer.json, tokenizer_config.json, model.safetensors or its shards). "
                "They are read inside this page; nothing is uploaded anywhere."
            </p>
        </section>
        <StoragePanel/>
    }
}

fn origin_words(o: Origin) -> &'static str {
    match o {
        Origin::Network => "downloading",
        Origin::Cache => "from cache",
        Origin::Local => "local file",
    }
}

#[component]
fn ModelRow(label: &'static str, status: RwSignal<ModelStatus>, which: Slot) -> impl IntoView {
    let testid = match which {
        Slot::Foundation => "model-foundation",
        Slot::Instruct => "model-instruct",
    };
    let s = state();
    let source_words = move || {
        status.with(|m| {
            if m.files.is_empty() {
                String::new()
            } else if m.files.iter().all(|f| f.origin == Origin::Cache) {
                " from cache".to_string()
            } else if m.files.iter().all(|f| f.origin == Origin::Local) {
                " from local files".to_string()
            } else {
                String::new()
            }
        })
    };
    let phase_words = move || {
        let from = source_words();
        status.with(|m| match &m.phase {
            LoadPhase::Idle => "waiting".to_string(),
            LoadPhase::None => "none set (add ?foundation=owner/name to the address, or pick local files)".to_string(),
            LoadPhase::Downloading => "downloading…".to_string(),
            LoadPhase::Preparing => format!("preparing the weights{from}…"),
            LoadPhase::Ready { weight_bytes, .. } if which == Slot::Foundation && s.instruct_model.with(|i| i.spec == m.spec) => {
                format!("ready (the same file as the instruct model, shared in memory: {} of weights)", text::bytes(*weight_bytes))
            }
            LoadPhase::Ready { weight_bytes, load_ms } => {
                format!("ready{from} ({} of weights, loaded in {:.1} s)", text::bytes(*weight_bytes), load_ms / 1000.0)
            }
            LoadPhase::Failed(e) => format!("failed: {e}"),
        })
    };
    let phase_class = move || {
        status.with(|m| match m.phase {
            LoadPhase::Ready { .. } => "model ready",
            LoadPhase::Failed(_) => "model failed",
            _ => "model",
        })
    };
    let total_words = move || {
        status.with(|m| {
            if m.files.len() < 2 {
                return None;
            }
            let done: u64 = m.files.iter().map(|f| f.done).sum();
            let total: u64 = m.files.iter().map(|f| f.total.unwrap_or(f.done).max(f.done)).sum();
            Some(format!("all {} files: {} / {}", m.files.len(), text::bytes(done), text::bytes(total)))
        })
    };
    let input_id = format!("local-{testid}");
    let drag_over = RwSignal::new(false);
    let on_pick = move |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(list) = input.files() {
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            bridge::load_local(s, which, files);
        }
        let _ = input.dyn_ref::<web_sys::HtmlInputElement>().map(|i| i.set_value(""));
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        drag_over.set(false);
        if let Some(list) = ev.data_transfer().and_then(|d| d.files()) {
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            bridge::load_local(s, which, files);
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
                " — "
                <span class="phase" data-testid="model-phase">{phase_words}</span>
            </div>
            <ul class="files">
                {move || {
                    status
                        .get()
                        .files
                        .into_iter()
                        .map(|f| {
                            let total = f.total.unwrap_or(0).max(f.done);
                            let mut words = match f.total {
                                Some(t) => format!("{} / {}", text::bytes(f.done), text::bytes(t.max(f.done))),
                                None => format!("{} (size unknown)", text::bytes(f.done)),
                            };
                            let finished = f.total.is_some_and(|t| f.done >= t);
                            if f.origin != Origin::Network || finished {
                                words.push_str(&format!(" · {}", if f.origin == Origin::Network { "downloaded" } else { origin_words(f.origin) }));
                            }
                            if let Some(sp) = text::speed_words(f.done, f.total, f.updated_ms - f.started_ms) {
                                if !finished {
                                    words.push_str(&format!(" · {sp}"));
                                }
                            }
                            view! {
                                <li data-testid="file-progress" data-origin=origin_words(f.origin)>
                                    <span class="file">{f.file.clone()}</span>
                                    <progress max=total.max(1).to_string() value=f.done.to_string()></progress>
                                    <span class="bytes" data-done=f.done.to_string() data-total=total.to_string()>{words}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            {move || total_words().map(|w| view! { <p class="small" data-testid="total-progress">{w}</p> })}
            {move || status.with(|m| m.warning.clone()).map(|w| view! { <p class="warning" role="status" data-testid="model-warning">{w}</p> })}
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
                        .then(|| view! { <button class="link" on:click=move |_| bridge::forget_local(s, which)>"back to the hub"</button> })
                }}
            </div>
        </div>
    }
}

#[component]
fn StoragePanel() -> impl IntoView {
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
                <button data-testid="persist" on:click=move |_| persisted(s, true)>"Keep it (persistent storage)"</button>
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

#[component]
fn QuestionBox() -> impl IntoView {
    let s = state();
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            bridge::ask(s);
        }
    };
    view! {
        <section class="ask" aria-label="Question">
            <label for="question">"Your question"</label>
            <textarea
                id="question"
                data-testid="question"
                rows="2"
                prop:value=move || s.question.get()
                on:input=move |ev| s.question.set(event_target_value(&ev))
                on:keydown=on_key
            ></textarea>
            <div class="presets" role="group" aria-label="Example questions">
                {PRESETS
                    .iter()
                    .map(|p| {
                        let p = *p;
                        view! { <button class="chip" on:click=move |_| s.question.set(p.to_string())>{p}</button> }
                    })
                    .collect_view()}
            </div>
            <div class="actions">
                <button class="primary" data-testid="ask" on:click=move |_| bridge::ask(s)>"Ask"</button>
                <button data-testid="stop" on:click=move |_| bridge::stop() disabled=move || !s.any_busy()>"Stop"</button>
                <span class="hint">"Ctrl+Enter asks too."</span>
            </div>
        </section>
    }
}

fn num_input<T: std::str::FromStr + ToString + Copy + Send + Sync + 'static>(
    label: &'static str,
    id: &'static str,
    step: &'static str,
    get: impl Fn(&super::state::Settings) -> T + Copy + Send + Sync + 'static,
    set: impl Fn(&mut super::state::Settings, T) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let s = state();
    view! {
        <label class="setting" for=id>
            <span>{label}</span>
            <input
                id=id
                type="number"
                step=step
                prop:value=move || s.settings.with(|x| get(x).to_string())
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<T>() {
                        s.settings.update(|x| set(x, v));
                    }
                }
            />
        </label>
    }
}

#[component]
fn SettingsPanel() -> impl IntoView {
    let s = state();
    let on_precision = move |ev| {
        if let Some(p) = text::parse_precision(&event_target_value(&ev)) {
            s.settings.update(|x| x.precision = p);
            bridge::load_models(s);
        }
    };
    view! {
        <details class="settings">
            <summary>"Settings"</summary>
            <div class="grid">
                {num_input("max_new_tokens", "max-new-tokens", "1", |x| x.sampling.max_new_tokens, |x, v| x.sampling.max_new_tokens = v)}
                {num_input("max_new_tokens (follow-up)", "follow-up-max", "1", |x| x.follow_up_max_new_tokens, |x, v| x.follow_up_max_new_tokens = v)}
                <label class="setting check" for="do-sample">
                    <input
                        id="do-sample"
                        type="checkbox"
                        prop:checked=move || s.settings.with(|x| x.sampling.do_sample)
                        on:change=move |ev| s.settings.update(|x| x.sampling.do_sample = event_target_checked(&ev))
                    />
                    <span>"do_sample (off: always the most likely token)"</span>
                </label>
                {num_input("temperature", "temperature", "0.1", |x| x.sampling.temperature, |x, v| x.sampling.temperature = v)}
                {num_input("top-p", "top-p", "0.05", |x| x.sampling.top_p, |x, v| x.sampling.top_p = v)}
                {num_input("top-k (0 = off)", "top-k", "1", |x| x.sampling.top_k, |x, v| x.sampling.top_k = v)}
                {num_input("repetition penalty", "repetition-penalty", "0.05", |x| x.sampling.repetition_penalty, |x, v| x.sampling.repetition_penalty = v)}
                {num_input("seed", "seed", "1", |x| x.sampling.seed, |x, v| x.sampling.seed = v)}
                <label class="setting" for="precision">
                    <span>"precision (reloads the models)"</span>
                    <select id="precision" on:change=on_precision>
                        {[("auto", "auto (fastest faithful)"), ("stored", "as stored in the file"), ("f32", "f32"), ("f16", "f16"), ("q8_0", "Q8_0")]
                            .into_iter()
                            .map(|(v, l)| {
                                view! {
                                    <option
                                        value=v
                                        selected=move || s.settings.with(|x| text::precision_name(x.precision) == v)
                                    >
                                        {l}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
            </div>
            <p class="small">
                "Greedy decoding (do_sample off) gives the same answer every time. Changing precision re-reads the weights: "
                "quantization can change an answer."
            </p>
        </details>
    }
}

#[component]
fn Tabs() -> impl IntoView {
    let s = state();
    let focus = |t: Tab| {
        if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&format!("tab-{}", t.id()))) {
            use wasm_bindgen::JsCast;
            let _ = el.unchecked_into::<web_sys::HtmlElement>().focus();
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        let i = Tab::ALL.iter().position(|t| *t == s.tab.get_untracked()).unwrap_or(0);
        let n = Tab::ALL.len();
        let next = match ev.key().as_str() {
            "ArrowRight" => (i + 1) % n,
            "ArrowLeft" => (i + n - 1) % n,
            "Home" => 0,
            "End" => n - 1,
            _ => return,
        };
        ev.prevent_default();
        s.tab.set(Tab::ALL[next]);
        focus(Tab::ALL[next]);
    };
    view! {
        <div class="tabs">
            <div role="tablist" aria-label="Three answers and the prompt" on:keydown=on_key>
                {Tab::ALL
                    .into_iter()
                    .map(|t| {
                        view! {
                            <button
                                role="tab"
                                id=format!("tab-{}", t.id())
                                aria-controls=format!("panel-{}", t.id())
                                aria-selected=move || if s.tab.get() == t { "true" } else { "false" }
                                tabindex=move || if s.tab.get() == t { "0" } else { "-1" }
                                on:click=move |_| s.tab.set(t)
                            >
                                {t.label()}
                                <TabBusy tab=t/>
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            {Tab::ALL
                .into_iter()
                .map(|t| {
                    view! {
                        <section
                            role="tabpanel"
                            id=format!("panel-{}", t.id())
                            aria-labelledby=format!("tab-{}", t.id())
                            hidden=move || s.tab.get() != t
                            tabindex="0"
                        >
                            {match t {
                                Tab::Foundation => view! { <FoundationPanel/> }.into_any(),
                                Tab::Instruct => view! { <InstructPanel/> }.into_any(),
                                Tab::Chat => view! { <ChatPanel/> }.into_any(),
                                Tab::Prompt => view! { <PromptPanel/> }.into_any(),
                            }}
                        </section>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// A dot on a tab while its answer streams.
#[component]
fn TabBusy(tab: Tab) -> impl IntoView {
    let s = state();
    let busy = move || match tab {
        Tab::Foundation => s.foundation.with(|a| a.phase.busy()),
        Tab::Instruct => s.instruct.with(|a| a.phase.busy()),
        Tab::Chat => s.chat.with(|c| c.iter().any(|t| t.answer.phase.busy())),
        Tab::Prompt => false,
    };
    move || busy().then(|| view! { <span class="dot" aria-label="writing"></span> })
}

/// The status, text, ending words and timings of one answer.
#[component]
fn AnswerBody(answer: Signal<Answer>, #[prop(optional)] prefix: Option<Signal<String>>) -> impl IntoView {
    let phase_words = move || {
        answer.with(|a| match &a.phase {
            Phase::Waiting => Some("Waiting for the model…".to_string()),
            Phase::Reading => Some("Reading the prompt…".to_string()),
            _ => None,
        })
    };
    let ids = move || answer.with(|a| a.tokens.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(","));
    let phase_attr = move || {
        answer.with(|a| match &a.phase {
            Phase::Idle => "idle",
            Phase::Waiting => "waiting",
            Phase::Reading => "reading",
            Phase::Streaming => "streaming",
            Phase::Done(_) => "done",
            Phase::Stopped => "stopped",
            Phase::Failed(_) => "failed",
        })
    };
    view! {
        <div class="answer" data-testid="answer" data-phase=phase_attr data-token-ids=ids>
            <p class="answer-text">
                {move || prefix.map(|p| view! { <span class="prompt-echo">{move || p.get()}</span> })}
                <span data-testid="answer-text">{move || answer.with(|a| a.text.clone())}</span>
                {move || answer.with(|a| a.phase == Phase::Streaming).then(|| view! { <span class="caret" aria-hidden="true">"▍"</span> })}
            </p>
            {move || phase_words().map(|w| view! { <p class="muted">{w}</p> })}
            {move || {
                answer.with(|a| {
                    bridge::ending_words(&a.phase, !a.text.trim().is_empty(), a.max_new_tokens)
                        .map(|w| view! { <p class="ending" data-testid="ending">{w}</p> })
                })
            }}
            {move || {
                // Why it ended at once: what the model weighed for that first token.
                answer.with(|a| match (&a.phase, &a.end_step) {
                    (Phase::Done(StopReason::EndOfText), Some(step)) if a.text.trim().is_empty() => {
                        let step = step.clone();
                        Some(view! {
                            <p class="end-candidates" data-testid="end-candidates">
                                "What it weighed for that token: "
                                <span class="cands">
                                    {step.candidates.into_iter().map(|c| view! { <CandidateChip candidate=c picked=step.id/> }).collect_view()}
                                </span>
                            </p>
                        })
                    }
                    _ => None,
                })
            }}
            {move || answer.with(|a| match &a.phase {
                Phase::Failed(e) => Some(view! { <p class="error" role="alert">{e.clone()}</p> }),
                _ => None,
            })}
            {move || answer.with(|a| a.timings.as_ref().map(|t| view! { <p class="timings" data-testid="timings">{text::timings_line(t)}</p> }))}
        </div>
    }
}

/// One candidate token and its probability, as text: the piece quoted and
/// escaped (`"\n"`, `"<|im_end|>"`), so newlines and special tokens show.
#[component]
fn CandidateChip(candidate: Candidate, picked: u32) -> impl IntoView {
    view! {
        <span class="cand" class:chosen=candidate.id == picked data-token-id=candidate.id.to_string()>
            <code>{format!("{:?}", candidate.text)}</code>
            {format!(" {:.1}%", candidate.prob * 100.0)}
        </span>
    }
}

#[component]
fn FoundationPanel() -> impl IntoView {
    let s = state();
    let show = RwSignal::new(false);
    let answer: Signal<Answer> = s.foundation.into();
    let prefix = Signal::derive(move || s.foundation.with(|a| if a.job.is_some() { a.prompt.clone() } else { String::new() }));
    let model_problem = move || {
        s.foundation_model.with(|m| match &m.phase {
            LoadPhase::None => Some("No foundation model is set, so this tab has no answer; the other tabs still work.".to_string()),
            LoadPhase::Failed(e) => Some(format!("The foundation model could not be loaded, so this tab has no answer (the other tabs still work): {e}")),
            _ => None,
        })
    };
    view! {
        <p class="explain">
            "A foundation (base) model was only ever trained to continue text. It gets your question as a raw string, "
            "with no special tokens, and writes what usually comes next on the internet: often more questions, not an answer. "
            "The grey text is the prompt; the rest is the model's."
        </p>
        {move || model_problem().map(|p| view! { <p class="error" role="alert" data-testid="foundation-problem">{p}</p> })}
        <AnswerBody answer=answer prefix=prefix/>
        <label class="toggle">
            <input type="checkbox" data-testid="toggle-candidates" prop:checked=move || show.get() on:change=move |ev| show.set(event_target_checked(&ev))/>
            " Show the top candidates for each token (why it wrote this)"
        </label>
        {move || {
            show.get()
                .then(|| {
                    view! {
                        <ol class="candidates" data-testid="candidates">
                            {move || {
                                s.foundation
                                    .with(|a| a.tokens.clone())
                                    .into_iter()
                                    .map(|t| {
                                        view! {
                                            <li>
                                                <code class="tok">{format!("{:?}", t.text)}</code>
                                                <span class="cands">
                                                    {t
                                                        .candidates
                                                        .into_iter()
                                                        .map(|c| view! { <CandidateChip candidate=c picked=t.id/> })
                                                        .collect_view()}
                                                </span>
                                            </li>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </ol>
                    }
                })
        }}
    }
}

#[component]
fn InstructPanel() -> impl IntoView {
    let s = state();
    view! {
        <p class="explain">
            "An instruct model is the same base model fine-tuned on request → response pairs. It only behaves when the "
            "question is wrapped in the chat template it was trained on (see the Prompt tab); then it answers and stops."
        </p>
        <AnswerBody answer=s.instruct.into()/>
    }
}

#[component]
fn ChatPanel() -> impl IntoView {
    let s = state();
    let busy = move || s.chat.with(|c| c.iter().any(|t| t.answer.phase.busy()));
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            if !busy() {
                bridge::follow_up(s);
            }
        }
    };
    view! {
        <p class="explain">
            "A chat model is usually the very same instruct weights, driven with a growing list of role-tagged messages. "
            "Every turn sends the whole history, so a vague follow-up (\"there\") is understood. "
            "The worker re-uses what it already computed for the earlier turns (its KV cache)."
        </p>
        <details class="system">
            <summary>"System prompt"</summary>
            <textarea
                data-testid="system-prompt"
                rows="2"
                placeholder="Empty: the template's own default (for SmolLM2: “You are a helpful AI assistant named SmolLM, trained by Hugging Face”)."
                prop:value=move || s.system_prompt.get()
                on:input=move |ev| s.system_prompt.set(event_target_value(&ev))
            ></textarea>
        </details>
        <ol class="bubbles" data-testid="chat">
            {move || {
                let n = s.chat.with(|c| c.len());
                (0..n)
                    .map(|i| {
                        let user = move || s.chat.with(|c| c.get(i).map(|t| t.user.clone()).unwrap_or_default());
                        let answer = Signal::derive(move || s.chat.with(|c| c.get(i).map(|t| t.answer.clone()).unwrap_or_default()));
                        view! {
                            <li class="bubble user" data-testid="chat-user">{user}</li>
                            <li class="bubble assistant" data-testid="chat-assistant">
                                <AnswerBody answer=answer/>
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ol>
        {move || s.chat.with(|c| c.is_empty()).then(|| view! { <p class="muted">"Press Ask to start the conversation."</p> })}
        <div class="follow-up">
            <label for="follow-up">"Follow-up"</label>
            <input
                id="follow-up"
                data-testid="follow-up"
                type="text"
                prop:value=move || s.follow_up.get()
                on:input=move |ev| s.follow_up.set(event_target_value(&ev))
                on:keydown=on_key
            />
            <button
                class="primary"
                data-testid="send-follow-up"
                disabled=move || busy() || s.chat.with(|c| c.is_empty())
                on:click=move |_| bridge::follow_up(s)
            >
                "Send"
            </button>
            <button data-testid="reset-chat" on:click=move |_| bridge::reset_chat(s)>"Reset"</button>
        </div>
    }
}

#[component]
fn PromptPanel() -> impl IntoView {
    let s = state();
    let show_tokens = RwSignal::new(false);
    let instruct: Signal<Answer> = s.instruct.into();
    let last_chat = Signal::derive(move || s.chat.with(|c| c.last().map(|t| t.answer.clone()).unwrap_or_default()));
    view! {
        <p class="explain">
            "This is exactly the string the instruct and chat model receive. The highlighted control tokens such as "
            <code>"<|im_start|>"</code>
            " are single tokens the template adds; you never type them. The foundation model gets only your raw question."
        </p>
        <label class="toggle">
            <input type="checkbox" data-testid="toggle-tokens" prop:checked=move || show_tokens.get() on:change=move |ev| show_tokens.set(event_target_checked(&ev))/>
            " Show the token pieces with their ids"
        </label>
        <h3>"Instruct prompt"</h3>
        <PromptView answer=instruct show_tokens=show_tokens testid="prompt-instruct"/>
        <h3>"Chat prompt (latest turn)"</h3>
        <PromptView answer=last_chat show_tokens=show_tokens testid="prompt-chat"/>
    }
}

#[component]
fn PromptView(answer: Signal<Answer>, show_tokens: RwSignal<bool>, testid: &'static str) -> impl IntoView {
    view! {
        <div data-testid=testid>
            {move || {
                answer.with(|a| {
                    if a.prompt.is_empty() {
                        return view! { <p class="muted">"Press Ask to see the prompt."</p> }.into_any();
                    }
                    if show_tokens.get() {
                        let n = a.prompt_tokens.len();
                        return view! {
                            <p class="small">{format!("{n} tokens")}</p>
                            <div class="pieces" data-testid="token-pieces">
                                {a.prompt_tokens
                                    .iter()
                                    .map(|t| {
                                        view! {
                                            <span class="piece" class:special=t.special>
                                                <span class="piece-text">{t.piece.replace('\n', "↵")}</span>
                                                <sub>{t.id}</sub>
                                            </span>
                                        }
                                    })
                                    .collect_view()}
                            </div>
                        }
                            .into_any();
                    }
                    let mut specials: Vec<String> = a.prompt_tokens.iter().filter(|t| t.special).map(|t| t.piece.clone()).collect();
                    specials.sort();
                    specials.dedup();
                    view! {
                        <pre class="prompt">
                            {split_special(&a.prompt, &specials)
                                .into_iter()
                                .map(|seg| {
                                    if seg.special {
                                        view! { <mark class="special">{seg.text}</mark> }.into_any()
                                    } else {
                                        view! { <span>{seg.text}</span> }.into_any()
                                    }
                                })
                                .collect_view()}
                        </pre>
                    }
                        .into_any()
                })
            }}
        </div>
    }
}
