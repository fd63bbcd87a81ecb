//! The model rows: progress, readiness, failure, and the download offer.

use super::*;

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

#[wasm_bindgen_test]
async fn the_download_offer_waits_for_a_click_and_names_every_models_total() {
    let page = Page::open().await;
    page.send(FromWorker::Ready { threads: 1, note: None }).await;
    let ask_first = page.take_posted().into_iter().find_map(|m| match m {
        ToWorker::Load { ask_first, .. } => Some(ask_first),
        _ => None,
    });
    assert_eq!(ask_first, Some(true), "huggingface.co is another origin: the first load only asks the size");
    assert!(try_q("[data-testid=download-models]").is_none(), "no offer before the worker says what is missing");

    // One message with both models' sizes: the first offer shown is the whole total.
    let sizes = vec![(Slot::Instruct, Some(300 << 20)), (Slot::Foundation, Some(200 << 20))];
    page.send(FromWorker::DownloadNeeded { sizes }).await;
    assert_eq!(text(&q("[data-testid=download-models]")), "Download 500.0 MB");
    assert!(text(&q("[data-testid=model-foundation] [data-testid=model-phase]")).contains("200.0 MB"));

    click(&q("[data-testid=download-models]")).await;
    let ask_first = page.take_posted().into_iter().find_map(|m| match m {
        ToWorker::Load { ask_first, .. } => Some(ask_first),
        _ => None,
    });
    assert_eq!(ask_first, Some(false), "the click agrees to the download");
    assert!(try_q("[data-testid=download-offer]").is_none(), "the offer goes once the download starts");
}
