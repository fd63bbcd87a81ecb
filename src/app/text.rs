//! Pure helpers of the page (compiled and unit-tested natively too): the URL
//! query, splitting a templated prompt into plain text and special tokens, and
//! the words the page shows for states, sizes and speeds.

use super::state::{FileProgress, LoadPhase, ModelStatus, Phase};
pub use crate::engine::modes::{DEFAULT_FOLLOW_UP, DEFAULT_QUESTION};
use crate::protocol::{Origin, StopReason, Timings};
pub use crate::words::bytes;

pub const DEFAULT_HUB: &str = "https://huggingface.co";
pub const DEFAULT_FOUNDATION: &str = "HuggingFaceTB/SmolLM2-135M";
pub const DEFAULT_INSTRUCT: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";
pub const PRESETS: [&str; 4] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain gravity to a child.",
    "List three fruits.",
];

/// Where a model comes from, in words, when it is not the official hub's
/// `main`: "from 127.0.0.1:8080/hub @ v2" (None for the defaults).
pub fn origin_words(hub: &str, revision: &str) -> Option<String> {
    let hub = hub.trim().trim_end_matches('/');
    let revision = revision.trim();
    let host = hub.split_once("://").map_or(hub, |(_, rest)| rest);
    let custom_rev = !revision.is_empty() && revision != "main";
    match (hub == DEFAULT_HUB, custom_rev) {
        (true, false) => None,
        (true, true) => Some(format!("@ {revision}")),
        (false, false) => Some(format!("from {host}")),
        (false, true) => Some(format!("from {host} @ {revision}")),
    }
}

/// Download speed and time left, e.g. "12.3 MB/s, 4 s left".
pub fn speed_words(done: u64, total: Option<u64>, elapsed_ms: f64) -> Option<String> {
    if elapsed_ms < 200.0 || done == 0 {
        return None;
    }
    let rate = done as f64 / (elapsed_ms / 1000.0);
    let mut out = format!("{}/s", bytes(rate as u64));
    if let Some(t) = total.filter(|t| *t > done) {
        let left = ((t - done) as f64 / rate).ceil() as u64;
        out.push_str(&if left >= 90 { format!(", {} min left", left.div_ceil(60)) } else { format!(", {left} s left") });
    }
    Some(out)
}

/// A piece of a prompt: plain text, or a special token such as `<|im_start|>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub special: bool,
}

/// Splits `prompt` at every occurrence of one of `specials` (longest first).
pub fn split_special(prompt: &str, specials: &[String]) -> Vec<Segment> {
    let mut specials: Vec<&str> = specials.iter().map(|s| s.as_str()).filter(|s| !s.is_empty()).collect();
    specials.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out: Vec<Segment> = vec![];
    let mut plain = String::new();
    let mut rest = prompt;
    while !rest.is_empty() {
        if let Some(s) = specials.iter().find(|s| rest.starts_with(**s)) {
            if !plain.is_empty() {
                out.push(Segment { text: std::mem::take(&mut plain), special: false });
            }
            out.push(Segment { text: s.to_string(), special: true });
            rest = &rest[s.len()..];
        } else {
            let c = rest.chars().next().expect("not empty");
            plain.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !plain.is_empty() {
        out.push(Segment { text: plain, special: false });
    }
    out
}

/// The line of speeds and times under an answer.
pub fn timings_line(t: &Timings) -> String {
    let tokens = |n: usize| format!("{n} token{}", if n == 1 { "" } else { "s" });
    let reused = if t.reused_tokens > 0 { format!(", {} re-used from the cache", t.reused_tokens) } else { String::new() };
    // Decode speed needs two tokens: the first one comes from the prompt's pass.
    let speed = match t.generated_tokens {
        0 | 1 => String::new(),
        _ => format!(", {:.1} tok/s ({:.0} ms)", t.decode_tok_per_s(), t.decode_ms),
    };
    format!(
        "prompt: {}{reused}, read in {:.0} ms ({:.0} tok/s) · answer: {}{speed}",
        tokens(t.prompt_tokens),
        t.prefill_ms,
        t.prefill_tok_per_s(),
        tokens(t.generated_tokens),
    )
}

/// Where a file's bytes come from, in one or two words.
pub fn source_words(o: Origin) -> &'static str {
    match o {
        Origin::Network => "downloading",
        Origin::Cache => "from cache",
        Origin::Local => "local file",
    }
}

/// One file's line under a model: "12.0 MB / 98.0 MB · 3.1 MB/s, 29 s left",
/// "98.0 MB / 98.0 MB · from cache".
pub fn file_words(f: &FileProgress) -> String {
    let mut words = match f.total {
        Some(t) => format!("{} / {}", bytes(f.done), bytes(t.max(f.done))),
        None => format!("{} (size unknown)", bytes(f.done)),
    };
    let finished = f.total.is_some_and(|t| f.done >= t);
    if f.origin != Origin::Network || finished {
        words.push_str(&format!(" · {}", if f.origin == Origin::Network { "downloaded" } else { source_words(f.origin) }));
    }
    match speed_words(f.done, f.total, f.updated_ms - f.started_ms) {
        Some(speed) if !finished => words.push_str(&format!(" · {speed}")),
        _ => {}
    }
    words
}

/// The sum over a model's files, when it has more than one.
pub fn total_words(files: &[FileProgress]) -> Option<String> {
    if files.len() < 2 {
        return None;
    }
    let done: u64 = files.iter().map(|f| f.done).sum();
    let total: u64 = files.iter().map(|f| f.total.unwrap_or(f.done).max(f.done)).sum();
    Some(format!("all {} files: {} / {}", files.len(), bytes(done), bytes(total)))
}

/// A model's state in words. `shared`: it is the instruct model's very file,
/// loaded once.
pub fn model_phase_words(m: &ModelStatus, shared: bool) -> String {
    let from = match &m.files {
        f if f.is_empty() => "",
        f if f.iter().all(|f| f.origin == Origin::Cache) => " from cache",
        f if f.iter().all(|f| f.origin == Origin::Local) => " from local files",
        _ => "",
    };
    match &m.phase {
        LoadPhase::Idle => "waiting".to_string(),
        LoadPhase::None => "none set (add ?foundation=owner/name to the address, or pick local files)".to_string(),
        LoadPhase::AskFirst { bytes: Some(0) } => "not downloaded yet (the same files as the instruct model)".to_string(),
        LoadPhase::AskFirst { bytes: Some(n) } => format!("not downloaded yet ({})", bytes(*n)),
        LoadPhase::AskFirst { bytes: None } => "not downloaded yet (size unknown)".to_string(),
        LoadPhase::Downloading => "downloading…".to_string(),
        LoadPhase::Preparing => format!("preparing the weights{from}…"),
        LoadPhase::Ready { weight_bytes, .. } if shared => {
            format!("ready (the same file as the instruct model, shared in memory: {} of weights)", bytes(*weight_bytes))
        }
        LoadPhase::Ready { weight_bytes, load_ms } => format!("ready{from} ({} of weights, loaded in {:.1} s)", bytes(*weight_bytes), load_ms / 1000.0),
        LoadPhase::Failed(e) => format!("failed: {e}"),
    }
}

/// The label of the button that starts the first download: "Download 540
/// MB" (a size the hub did not give makes it "Download the models").
pub fn download_button_words(sizes: &[Option<u64>]) -> String {
    match sizes.iter().copied().sum::<Option<u64>>() {
        Some(n) if n > 0 => format!("Download {}", bytes(n)),
        _ => "Download the models (size unknown)".to_string(),
    }
}

/// A probability as a percentage with enough digits to tell small ones
/// apart: "88.2 %", "0.31 %", "<0.01 %".
pub fn percent(p: f32) -> String {
    let pc = p * 100.0;
    match pc {
        x if x >= 10.0 => format!("{x:.1} %"),
        x if x >= 0.01 => format!("{x:.2} %"),
        _ => "<0.01 %".to_string(),
    }
}

/// The end-of-text meter in one sentence (for everyone, and what a screen
/// reader gets for the chart): how sure the model was, step by step, that
/// the text was over.
pub fn end_meter_words(probs: &[f32], ended_by_eot: bool) -> String {
    let Some((&last, before)) = probs.split_last() else { return String::new() };
    let (body, n) = if ended_by_eot { (before, before.len()) } else { (probs, probs.len()) };
    let peak = body.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1));
    let tokens = |n: usize| if n == 1 { "1 token".to_string() } else { format!("{n} tokens") };
    let during = match peak {
        None => String::new(),
        Some((_, p)) if p < 0.01 => format!("stayed under 1 % for {}", tokens(n)),
        Some((i, p)) => format!("was at most {} over {} (token {})", percent(p), tokens(n), i + 1),
    };
    match (ended_by_eot, during.is_empty()) {
        (true, true) => format!("End-of-text probability: {} at the first step, so it stopped at once.", percent(last)),
        (true, false) => format!("End-of-text probability {during}, then {} at the step where it stopped.", percent(last)),
        (false, _) => format!("End-of-text probability {during}: it never chose to stop."),
    }
}

/// The chat's context meter in words: how much of the model's context window
/// the conversation fills after a turn, and what that turn re-used and added.
pub fn chat_context_words(t: &Timings, context_tokens: u64) -> String {
    let used = t.prompt_tokens + t.generated_tokens;
    let new = t.prompt_tokens - t.reused_tokens.min(t.prompt_tokens);
    let share = match context_tokens {
        0 => String::new(),
        c => format!(" of the model's {c} ({:.1} %)", used as f64 * 100.0 / c as f64),
    };
    format!(
        "The conversation is now {used} tokens{share}. This turn re-used {} from the cache, read {new} new ones and wrote {}.",
        t.reused_tokens, t.generated_tokens
    )
}

/// Which commit a model's files are from: "main @ 1a2b3c4".
pub fn commit_words(revision: &str, commit: &str) -> String {
    let revision = match revision.trim() {
        "" => "main",
        r if r.eq_ignore_ascii_case(commit) => return format!("@ {}", &commit[..commit.len().min(7)]),
        r => r,
    };
    format!("{revision} @ {}", &commit[..commit.len().min(7)])
}

/// Words for an answer before its first token, or None.
pub fn waiting_words(phase: &Phase) -> Option<&'static str> {
    match phase {
        Phase::Waiting => Some("Waiting for the model…"),
        Phase::Reading => Some("Reading the prompt…"),
        _ => None,
    }
}

/// What a screen reader hears of an answer: nothing while it streams, then
/// the whole answer (or why it has none) once it has ended.
pub fn announce_words(phase: &Phase, text: &str, max_new_tokens: usize) -> String {
    match phase {
        Phase::Done(_) | Phase::Stopped if !text.trim().is_empty() => {
            let ending = ending_words(phase, true, max_new_tokens).map(|w| format!(" {w}")).unwrap_or_default();
            format!("Answer: {}{ending}", text.trim())
        }
        Phase::Done(_) | Phase::Stopped => ending_words(phase, false, max_new_tokens).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Words for an ended answer, or None while it streams / when it has text.
pub fn ending_words(phase: &Phase, has_text: bool, max_new_tokens: usize) -> Option<String> {
    match phase {
        Phase::Done(StopReason::EndOfText) if !has_text => {
            Some("The model ended its answer at once: its very first token was end-of-text, so there is nothing to show.".into())
        }
        Phase::Done(StopReason::MaxNewTokens) => {
            Some(format!("Cut at max_new_tokens ({max_new_tokens}): the model had not finished. Raise it in Settings to read more."))
        }
        Phase::Stopped => Some("Stopped.".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_words() {
        let t = Timings { prompt_tokens: 7, reused_tokens: 0, prefill_ms: 200.0, generated_tokens: 1, decode_ms: 0.0 };
        assert_eq!(timings_line(&t), "prompt: 7 tokens, read in 200 ms (35 tok/s) · answer: 1 token");
        let t = Timings { prompt_tokens: 63, reused_tokens: 44, prefill_ms: 100.0, generated_tokens: 11, decode_ms: 500.0 };
        assert_eq!(
            timings_line(&t),
            "prompt: 63 tokens, 44 re-used from the cache, read in 100 ms (190 tok/s) · answer: 11 tokens, 20.0 tok/s (500 ms)"
        );
    }

    #[test]
    fn speeds() {
        assert_eq!(speed_words(10 << 20, Some(20 << 20), 1000.0).as_deref(), Some("10.0 MB/s, 1 s left"));
        assert_eq!(speed_words(1 << 20, None, 1000.0).as_deref(), Some("1.0 MB/s"));
        assert_eq!(speed_words(0, None, 1000.0), None);
    }

    #[test]
    fn specials() {
        let s = split_special("<|im_start|>user\nHi<|im_end|>\n", &["<|im_start|>".into(), "<|im_end|>".into()]);
        let texts: Vec<(&str, bool)> = s.iter().map(|s| (s.text.as_str(), s.special)).collect();
        assert_eq!(texts, vec![("<|im_start|>", true), ("user\nHi", false), ("<|im_end|>", true), ("\n", false)]);
    }

    #[test]
    fn origin_is_said_when_not_the_default() {
        assert_eq!(origin_words("https://huggingface.co", "main"), None);
        assert_eq!(origin_words("https://huggingface.co/", ""), None);
        assert_eq!(origin_words("https://huggingface.co", "v2").as_deref(), Some("@ v2"));
        assert_eq!(origin_words("https://elsewhere.example/hub", "main").as_deref(), Some("from elsewhere.example/hub"));
        assert_eq!(origin_words("http://127.0.0.1:8080/hub/", "abc123").as_deref(), Some("from 127.0.0.1:8080/hub @ abc123"));
    }

    fn file(done: u64, total: Option<u64>, origin: Origin, elapsed_ms: f64) -> FileProgress {
        FileProgress { file: "model.gguf".into(), done, total, origin, started_ms: 0.0, updated_ms: elapsed_ms }
    }

    #[test]
    fn file_lines() {
        assert_eq!(file_words(&file(12 << 20, Some(98 << 20), Origin::Network, 4000.0)), "12.0 MB / 98.0 MB · 3.0 MB/s, 29 s left");
        assert_eq!(file_words(&file(98 << 20, Some(98 << 20), Origin::Network, 4000.0)), "98.0 MB / 98.0 MB · downloaded");
        assert_eq!(file_words(&file(98 << 20, Some(98 << 20), Origin::Cache, 0.0)), "98.0 MB / 98.0 MB · from cache");
        assert_eq!(file_words(&file(3 << 10, None, Origin::Network, 100.0)), "3 kB (size unknown)");
        let files = [file(1 << 20, Some(2 << 20), Origin::Network, 0.0), file(5, None, Origin::Cache, 0.0)];
        assert_eq!(total_words(&files).as_deref(), Some("all 2 files: 1.0 MB / 2.0 MB"));
        assert_eq!(total_words(&files[..1]), None);
    }

    #[test]
    fn model_lines() {
        let ready = |origin| ModelStatus {
            phase: LoadPhase::Ready { weight_bytes: 138 << 20, load_ms: 2500.0 },
            files: vec![file(1, Some(1), origin, 0.0)],
            ..ModelStatus::default()
        };
        assert_eq!(model_phase_words(&ready(Origin::Cache), false), "ready from cache (138.0 MB of weights, loaded in 2.5 s)");
        assert_eq!(model_phase_words(&ready(Origin::Network), false), "ready (138.0 MB of weights, loaded in 2.5 s)");
        assert!(model_phase_words(&ready(Origin::Local), true).starts_with("ready (the same file as the instruct model"));
        let failed = ModelStatus { phase: LoadPhase::Failed("HTTP 404".into()), ..ModelStatus::default() };
        assert_eq!(model_phase_words(&failed, false), "failed: HTTP 404");
    }

    #[test]
    fn chat_context() {
        let t = Timings { prompt_tokens: 60, reused_tokens: 44, prefill_ms: 1.0, generated_tokens: 12, decode_ms: 1.0 };
        assert_eq!(
            chat_context_words(&t, 8192),
            "The conversation is now 72 tokens of the model's 8192 (0.9 %). This turn re-used 44 from the cache, read 16 new ones and wrote 12."
        );
        assert!(chat_context_words(&t, 0).starts_with("The conversation is now 72 tokens. "));
    }

    #[test]
    fn end_meter() {
        assert_eq!(percent(0.882), "88.2 %");
        assert_eq!(percent(0.0031), "0.31 %");
        assert_eq!(percent(0.00001), "<0.01 %");
        assert_eq!(
            end_meter_words(&[0.001, 0.002, 0.004, 0.9], true),
            "End-of-text probability stayed under 1 % for 3 tokens, then 90.0 % at the step where it stopped."
        );
        assert_eq!(end_meter_words(&[0.67], true), "End-of-text probability: 67.0 % at the first step, so it stopped at once.");
        assert_eq!(end_meter_words(&[0.001, 0.05, 0.002], false), "End-of-text probability was at most 5.00 % over 3 tokens (token 2): it never chose to stop.");
        assert_eq!(end_meter_words(&[], false), "");
    }

    #[test]
    fn download_and_commit() {
        assert_eq!(download_button_words(&[Some(270 << 20), Some(270 << 20)]), "Download 540.0 MB");
        assert_eq!(download_button_words(&[Some(98 << 20), Some(0)]), "Download 98.0 MB");
        assert_eq!(download_button_words(&[Some(1), None]), "Download the models (size unknown)");
        let c = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d";
        assert_eq!(commit_words("", c), "main @ 1a2b3c4");
        assert_eq!(commit_words("v2", c), "v2 @ 1a2b3c4");
        assert_eq!(commit_words(c, c), "@ 1a2b3c4");
        let asking = ModelStatus { phase: LoadPhase::AskFirst { bytes: Some(98 << 20) }, ..ModelStatus::default() };
        assert_eq!(model_phase_words(&asking, false), "not downloaded yet (98.0 MB)");
    }

    #[test]
    fn answer_endings() {
        assert!(ending_words(&Phase::Done(StopReason::EndOfText), false, 30).unwrap().contains("ended its answer at once"));
        assert_eq!(ending_words(&Phase::Done(StopReason::EndOfText), true, 30), None);
        assert!(ending_words(&Phase::Done(StopReason::MaxNewTokens), true, 30).unwrap().contains("max_new_tokens (30)"));
        assert_eq!(ending_words(&Phase::Stopped, true, 30).as_deref(), Some("Stopped."));
        assert_eq!(ending_words(&Phase::Streaming, true, 30), None);
        assert_eq!(waiting_words(&Phase::Reading), Some("Reading the prompt…"));
        assert_eq!(waiting_words(&Phase::Streaming), None);
        assert_eq!(announce_words(&Phase::Streaming, "The capital", 30), "");
        assert_eq!(announce_words(&Phase::Done(StopReason::EndOfText), " Paris. ", 30), "Answer: Paris.");
        assert!(announce_words(&Phase::Done(StopReason::MaxNewTokens), "Paris", 30).starts_with("Answer: Paris Cut at max_new_tokens (30)"));
        assert!(announce_words(&Phase::Done(StopReason::EndOfText), "", 30).contains("ended its answer at once"));
    }
}
