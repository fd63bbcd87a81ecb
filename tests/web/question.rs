//! The question box, the tabs, the settings and the Prompt tab.

use super::*;

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
