//! The page's address: what its query sets, and a link that reproduces the
//! page. Everything that decides the answers (question, models, hub,
//! revision, precision, every sampling setting, both answer lengths, the
//! system prompt and the chat's follow-ups) goes into the link and comes back
//! from it; a key or value that is not understood is named in the notice,
//! never silently dropped. Plain code, unit-tested natively.

use super::text::{DEFAULT_FOUNDATION, DEFAULT_HUB, DEFAULT_INSTRUCT, DEFAULT_QUESTION};
use crate::protocol::{CacheMode, Precision, SamplingSettings};

/// Seconds a busy worker may stay silent (see `state::allowed_silence`).
pub const DEFAULT_WATCHDOG_S: f64 = 30.0;
/// The follow-up's answer length (the tutorial's).
pub const DEFAULT_FOLLOW_UP_TOKENS: usize = 40;

/// Keys that change how the page fetches or runs, not what it answers:
/// known, but not part of a shared link.
const DELIVERY_KEYS: [&str; 6] = ["cache", "sw", "watchdog", "csp-probe", "threads", "isolation"];
const ANSWER_KEYS: [&str; 16] = [
    "q", "hub", "instruct", "foundation", "revision", "precision", "max_new_tokens", "follow_up_max_new_tokens", "do_sample",
    "temperature", "top_p", "top_k", "repetition_penalty", "seed", "system", "follow",
];

/// What the address sets.
#[derive(Debug, Clone, PartialEq)]
pub struct PageConfig {
    pub hub: String,
    /// None: `?foundation=` was given empty (no foundation model).
    pub foundation: Option<String>,
    pub instruct: String,
    pub question: String,
    pub precision: Precision,
    /// `?revision=` (a branch, tag or commit; default main).
    pub revision: String,
    pub sampling: SamplingSettings,
    pub follow_up_max_new_tokens: usize,
    /// `?system=`: the chat's system prompt (empty: the template's default).
    pub system: String,
    /// `?follow=` (repeated): the chat's follow-ups, asked in order after Ask.
    pub follow_ups: Vec<String>,
    /// `?cache=off` (do not use the browser's cache) or `full` (tests: simulate a full quota).
    pub cache: CacheMode,
    /// `?watchdog=S`: seconds of silence from a busy worker before it is
    /// taken for hung and restarted (default 30).
    pub watchdog_s: f64,
    /// `?threads=N` (or `auto`, 0): the engine's threads where the page may
    /// share memory (`threads::choose`).
    pub threads: usize,
    /// `?isolation=off`: the service worker does not make this page
    /// cross-origin isolated (so the single-thread engine runs).
    pub isolation_off: bool,
    /// Words about keys or values that were not understood.
    pub warning: Option<String>,
}

/// `?precision=`: a name the engine knows ("" means the default).
pub fn parse_precision(s: &str) -> Option<Precision> {
    match s.trim() {
        "" => Some(Precision::default()),
        name => Precision::from_name(name),
    }
}

pub fn precision_name(p: Precision) -> &'static str {
    p.name()
}

pub fn page_config(query: &[(String, String)]) -> PageConfig {
    let get = |k: &str| query.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_string());
    let mut problems: Vec<String> = vec![];
    let unknown: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).filter(|k| !ANSWER_KEYS.contains(k) && !DELIVERY_KEYS.contains(k)).collect();
    if !unknown.is_empty() {
        problems.push(format!("The address has settings this page does not know: {} (ignored).", unknown.join(", ")));
    }
    let precision = match get("precision") {
        None => Precision::default(),
        Some(p) => parse_precision(&p).unwrap_or_else(|| {
            problems.push(format!("Unknown precision \"{p}\" in the address: using auto. Use auto, stored, f32, f16 or q8_0."));
            Precision::default()
        }),
    };
    let defaults = SamplingSettings::default();
    let mut number = |key: &str, default: f64, min: f64| -> f64 {
        match get(key).map(|v| (v.parse::<f64>(), v)) {
            None => default,
            Some((Ok(x), _)) if x.is_finite() && x >= min => x,
            Some((_, v)) => {
                problems.push(format!("{key}=\"{v}\" in the address is not a number of at least {min}: using {default}."));
                default
            }
        }
    };
    let mut sampling = SamplingSettings {
        max_new_tokens: number("max_new_tokens", defaults.max_new_tokens as f64, 1.0) as usize,
        temperature: number("temperature", defaults.temperature, 0.0),
        top_p: number("top_p", defaults.top_p, 0.0),
        top_k: number("top_k", defaults.top_k as f64, 0.0) as usize,
        repetition_penalty: number("repetition_penalty", defaults.repetition_penalty as f64, 0.0) as f32,
        seed: number("seed", defaults.seed as f64, 0.0) as u64,
        ..defaults.clone()
    };
    let follow_up_max_new_tokens = number("follow_up_max_new_tokens", DEFAULT_FOLLOW_UP_TOKENS as f64, 1.0) as usize;
    let watchdog_s = number("watchdog", DEFAULT_WATCHDOG_S, 1.0);
    sampling.do_sample = match get("do_sample").as_deref() {
        None => defaults.do_sample,
        Some("1" | "true" | "on") => true,
        Some("0" | "false" | "off" | "") => false,
        Some(v) => {
            problems.push(format!("do_sample=\"{v}\" in the address is not true or false: greedy decoding."));
            false
        }
    };
    let threads = match get("threads") {
        None => 0,
        Some(t) => super::threads::parse_threads(&t).unwrap_or_else(|| {
            problems.push(format!("threads=\"{t}\" in the address is not auto or 1 to {}: one per core.", super::threads::MAX_THREADS));
            0
        }),
    };
    let isolation_off = match get("isolation").as_deref() {
        None | Some("on") => false,
        Some("off") => true,
        Some(v) => {
            problems.push(format!("isolation=\"{v}\" in the address is not on or off: on."));
            false
        }
    };
    if let Err(e) = sampling.check() {
        problems.push(format!("The sampling settings in the address do not work together ({e}): using the defaults."));
        sampling = SamplingSettings { max_new_tokens: sampling.max_new_tokens.max(1), ..defaults };
    }
    PageConfig {
        hub: get("hub").filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HUB.into()),
        foundation: match get("foundation") {
            None => Some(DEFAULT_FOUNDATION.into()),
            Some(f) if f.is_empty() => None,
            Some(f) => Some(f),
        },
        instruct: get("instruct").filter(|i| !i.is_empty()).unwrap_or_else(|| DEFAULT_INSTRUCT.into()),
        question: get("q").filter(|q| !q.is_empty()).unwrap_or_else(|| DEFAULT_QUESTION.into()),
        precision,
        revision: get("revision").filter(|r| !r.is_empty()).unwrap_or_else(|| "main".into()),
        sampling,
        follow_up_max_new_tokens,
        system: get("system").unwrap_or_default(),
        follow_ups: query.iter().filter(|(k, v)| k == "follow" && !v.trim().is_empty()).map(|(_, v)| v.trim().to_string()).collect(),
        cache: match get("cache").as_deref() {
            Some("off") => CacheMode::Off,
            Some("full") => CacheMode::SimulateFull,
            _ => CacheMode::Use,
        },
        watchdog_s,
        threads,
        isolation_off,
        warning: (!problems.is_empty()).then(|| problems.join(" ")),
    }
}

/// What a shared link carries: the page as it is now.
pub struct Shared<'a> {
    pub config: &'a PageConfig,
    pub question: &'a str,
    pub precision: Precision,
    pub sampling: &'a SamplingSettings,
    pub follow_up_max_new_tokens: usize,
    pub system: &'a str,
    pub follow_ups: &'a [String],
}

/// The query of a link that reproduces the page (every answer-deciding
/// value, defaults included, so a later default cannot change its answers).
pub fn share_query(s: &Shared) -> String {
    let c = s.config;
    let t = s.sampling;
    let mut pairs: Vec<(&str, String)> = vec![
        ("q", s.question.to_string()),
        ("hub", c.hub.clone()),
        ("instruct", c.instruct.clone()),
        ("foundation", c.foundation.clone().unwrap_or_default()),
        ("revision", c.revision.clone()),
        ("precision", precision_name(s.precision).to_string()),
        ("max_new_tokens", t.max_new_tokens.to_string()),
        ("follow_up_max_new_tokens", s.follow_up_max_new_tokens.to_string()),
        ("do_sample", t.do_sample.to_string()),
        ("temperature", t.temperature.to_string()),
        ("top_p", t.top_p.to_string()),
        ("top_k", t.top_k.to_string()),
        ("repetition_penalty", t.repetition_penalty.to_string()),
        ("seed", t.seed.to_string()),
        ("system", s.system.to_string()),
    ];
    pairs.extend(s.follow_ups.iter().map(|f| ("follow", f.clone())));
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encoding for a query value (`application/x-www-form-urlencoded`
/// would turn spaces into `+`; `%20` reads the same everywhere).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// A query string split and decoded as `URLSearchParams` does (no `+`).
    fn parse(query: &str) -> Vec<(String, String)> {
        let decode = |s: &str| {
            let bytes = s.as_bytes();
            let mut out = vec![];
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        query.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (decode(k), decode(v))).collect()
    }

    #[test]
    fn query() {
        let c = page_config(&q(&[]));
        assert_eq!(c.hub, DEFAULT_HUB);
        assert_eq!(c.foundation.as_deref(), Some(DEFAULT_FOUNDATION));
        assert_eq!(c.precision, Precision::Auto);
        assert_eq!((c.sampling.clone(), c.follow_up_max_new_tokens, c.follow_ups.len()), (SamplingSettings::default(), 40, 0));
        let c = page_config(&q(&[("hub", "http://h"), ("foundation", ""), ("precision", "F32"), ("q", "Hi")]));
        assert_eq!((c.hub.as_str(), c.foundation, c.precision, c.question.as_str()), ("http://h", None, Precision::F32, "Hi"));
        assert!(page_config(&q(&[("precision", "f8")])).warning.is_some());
        assert_eq!(c.revision, "main");
        let c = page_config(&q(&[("revision", "v2"), ("cache", "off")]));
        assert_eq!((c.revision.as_str(), c.cache), ("v2", CacheMode::Off));
        assert_eq!((c.watchdog_s, c.warning), (DEFAULT_WATCHDOG_S, None));
        assert_eq!(page_config(&q(&[("watchdog", "5")])).watchdog_s, 5.0);
        let c = page_config(&q(&[("threads", "2"), ("isolation", "off")]));
        assert_eq!((c.threads, c.isolation_off, c.warning), (2, true, None));
        let c = page_config(&q(&[("threads", "many"), ("isolation", "maybe")]));
        assert_eq!((c.threads, c.isolation_off), (0, false));
        assert!(c.warning.as_deref().is_some_and(|w| w.contains("threads=\"many\"") && w.contains("isolation=\"maybe\"")), "{:?}", c.warning);
        let c = page_config(&q(&[("watchdog", "0")]));
        assert_eq!(c.watchdog_s, DEFAULT_WATCHDOG_S);
        assert!(c.warning.unwrap().contains("watchdog"));
    }

    #[test]
    fn unknown_and_bad_values_are_named() {
        let c = page_config(&q(&[("bogus", "1"), ("temprature", "2"), ("temperature", "hot"), ("do_sample", "maybe"), ("top_p", "7")]));
        let w = c.warning.unwrap();
        assert!(w.contains("does not know: bogus, temprature (ignored)"), "{w}");
        assert!(w.contains("temperature=\"hot\""), "{w}");
        assert!(w.contains("do_sample=\"maybe\""), "{w}");
        assert!(w.contains("top_p must be in (0, 1]"), "{w}");
        assert_eq!(c.sampling.top_p, 1.0);
    }

    #[test]
    fn a_shared_link_gives_the_same_page() {
        let config = page_config(&q(&[("hub", "http://127.0.0.1:9/hub"), ("foundation", ""), ("precision", "f32")]));
        let sampling = SamplingSettings { max_new_tokens: 12, do_sample: true, temperature: 0.5, top_p: 0.9, top_k: 7, repetition_penalty: 1.25, seed: 3, ..Default::default() };
        let follow_ups = vec!["And what is a famous landmark there?".to_string(), "Tell me 50% & more #1?".to_string()];
        let shared = Shared {
            config: &config,
            question: "What is 2+2? Ünïcode & “quotes”",
            precision: Precision::F16,
            sampling: &sampling,
            follow_up_max_new_tokens: 9,
            system: "Be brief.\nVery.",
            follow_ups: &follow_ups,
        };
        let back = page_config(&parse(&share_query(&shared)));
        assert_eq!(back.warning, None);
        assert_eq!((back.question.as_str(), back.precision, back.sampling.clone()), (shared.question, Precision::F16, sampling.clone()));
        assert_eq!((back.hub.as_str(), back.foundation, back.instruct.as_str()), ("http://127.0.0.1:9/hub", None, DEFAULT_INSTRUCT));
        assert_eq!((back.follow_up_max_new_tokens, back.system.as_str(), back.follow_ups), (9, "Be brief.\nVery.", follow_ups));
    }
}
