//! Answers streaming in, what the model weighed, and the chat.

use super::*;

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
