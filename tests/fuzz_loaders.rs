//! Fuzzing the loaders (issue 11), as bounded property tests that run in
//! `cargo test`: the GGUF loader, the checkpoint's config.json and
//! safetensors header, the tokenizer loader, and chat template rendering.
//! The property: any input gives `Ok` or an `EngineError` within a memory cap
//! (4 GiB live, as a wasm32 worker has) and a time cap (20 s a case); never
//! a panic, an abort or a hang. Each target mutates real seeds (a small llama
//! with the test model's own tokenizer and template, written here) for
//! `THREE_ANSWERS_FUZZ_SECS` seconds (default 15); the seed of the run is
//! printed, and `THREE_ANSWERS_FUZZ_SEED` replays it. Inputs that once broke
//! something are kept in `tests/fuzz-corpus/` and replayed first.
//!
//! Not a coverage-guided fuzzer (cargo-fuzz needs a nightly toolchain and a
//! sanitizer runtime that CI here does not have): structured mutations of
//! valid files reach the checks past the magic bytes, where random bytes don't.

#[path = "common/kernel_checks.rs"]
#[allow(dead_code)]
mod checks;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use three_answers::engine::tokenizer::TextTokenizer;
use three_answers::engine::{ChatTemplate, CheckpointFiles, LanguageModel, Message, ModelFiles, Precision, ReadSeek, SamplingSettings};

/// Live bytes above this and an allocation fails (the process aborts, saying
/// how many bytes were asked for): the tab's whole address space in wasm32.
const MEMORY_CAP: usize = 4 << 30;
const CASE_TIME_CAP: Duration = Duration::from_secs(20);

struct Capped;
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// What the running case is, in words, for the report of a hang.
static CASE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn describe(what: impl Into<String>) {
    *CASE.lock().unwrap() = what.into();
}

// SAFETY: forwards to the system allocator; only counts what is live.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size() > MEMORY_CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Capped = Capped;

/// Runs `case` on mutated inputs until the time budget is spent. A case over
/// the time cap aborts the run, naming the target and the case.
fn fuzz(target: &'static str, mut case: impl FnMut(&mut checks::Lcg, u64)) {
    let secs: u64 = std::env::var("THREE_ANSWERS_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let seed: u64 = std::env::var("THREE_ANSWERS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("fuzz {target}: seed {seed} (THREE_ANSWERS_FUZZ_SEED={seed} replays it), {secs} s");
    let started_case = Arc::new(AtomicU64::new(0));
    let current = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let (watch_started, watch_current) = (started_case.clone(), current.clone());
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        let began = watch_started.load(Ordering::Relaxed);
        if began > 0 && (t0.elapsed().as_millis() as u64).saturating_sub(began) > CASE_TIME_CAP.as_millis() as u64 {
            let what = CASE.lock().map(|c| c.clone()).unwrap_or_default();
            eprintln!("fuzz {target}: case {} of seed {seed} ran over {CASE_TIME_CAP:?}: a hang. {what}", watch_current.load(Ordering::Relaxed));
            std::process::abort();
        }
    });
    let mut rng = checks::Lcg(seed);
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        current.store(n, Ordering::Relaxed);
        started_case.store(t0.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        case(&mut rng, n);
        started_case.store(0, Ordering::Relaxed);
        n += 1;
    }
    eprintln!("fuzz {target}: {n} cases, no panic, abort or hang");
    assert!(n >= 10, "fuzz {target}: only {n} cases ran");
}

fn below(rng: &mut checks::Lcg, n: usize) -> usize {
    (((rng.next() + 1.0) / 2.0) * n as f32) as usize % n.max(1)
}

const HOSTILE_NUMBERS: [u64; 10] = [0, 1, 2, 3, 255, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 63, u64::MAX];

/// One byte-level change: a cut, flipped bytes, or a little-endian field
/// overwritten with a boundary value (counts, lengths, offsets, types).
fn mutate_bytes(rng: &mut checks::Lcg, bytes: &mut Vec<u8>, hot: usize) {
    let at = |rng: &mut checks::Lcg, len: usize| if below(rng, 4) > 0 { below(rng, hot.min(len)) } else { below(rng, len) };
    match below(rng, 4) {
        0 => {
            let cut = below(rng, bytes.len());
            bytes.truncate(cut);
        }
        1 => {
            for _ in 0..1 + below(rng, 8) {
                let i = at(rng, bytes.len());
                bytes[i] ^= 1 << below(rng, 8);
            }
        }
        _ => {
            let i = at(rng, bytes.len().saturating_sub(8));
            let v = HOSTILE_NUMBERS[below(rng, HOSTILE_NUMBERS.len())];
            let width = [1, 2, 4, 8][below(rng, 4)];
            let end = (i + width).min(bytes.len());
            bytes[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
        }
    }
}

/// A JSON value replaced somewhere in the tree by a hostile one.
fn mutate_json(rng: &mut checks::Lcg, v: &mut serde_json::Value) {
    use serde_json::{json, Value as J};
    let hostile = |rng: &mut checks::Lcg| -> J {
        match below(rng, 12) {
            0 => J::Null,
            1 => json!(-1),
            2 => json!(0),
            3 => json!(HOSTILE_NUMBERS[below(rng, HOSTILE_NUMBERS.len())]),
            4 => json!(1e308),
            5 => json!(""),
            6 => json!("x".repeat(100_000)),
            7 => json!([]),
            8 => json!({}),
            9 => json!([[[[[[[[1]]]]]]]]),
            10 => json!(true),
            _ => json!(-0.5),
        }
    };
    // A random path down the tree, as a JSON pointer, then the change there.
    let mut pointer = String::new();
    let mut node: &J = v;
    for _ in 0..6 {
        let step = match node {
            J::Object(m) if !m.is_empty() => m.iter().nth(below(rng, m.len())).map(|(k, n)| (k.replace('~', "~0").replace('/', "~1"), n)),
            J::Array(a) if !a.is_empty() => {
                let i = below(rng, a.len());
                Some((i.to_string(), &a[i]))
            }
            _ => None,
        };
        match step {
            Some((key, next)) if below(rng, 3) > 0 => {
                pointer.push('/');
                pointer.push_str(&key);
                node = next;
            }
            _ => break,
        }
    }
    let remove = below(rng, 3) == 0;
    let value = hostile(rng);
    match v.pointer_mut(&pointer).expect("a path just walked") {
        J::Object(m) if !m.is_empty() && remove => {
            let k = m.keys().nth(below(rng, m.len())).cloned().expect("non-empty");
            m.remove(&k);
        }
        n => *n = value,
    }
}

/// A small llama (64 wide, 2 blocks) with the test model's tokenizer and chat
/// template: a complete GGUF that loads in milliseconds.
fn seed_gguf() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let real = std::fs::read(std::env::var("THREE_ANSWERS_TEST_GGUF").expect("THREE_ANSWERS_TEST_GGUF (scripts/test.sh sets it)")).unwrap();
        let real = gguf_file::Content::read(&mut std::io::Cursor::new(&real)).unwrap();
        let tiny_bytes = checks::tiny_llama_gguf(GgmlDType::Q8_0);
        let mut cursor = std::io::Cursor::new(&tiny_bytes[..]);
        let tiny = gguf_file::Content::read(&mut cursor).unwrap();
        let vocab = match &real.metadata["tokenizer.ggml.tokens"] {
            Value::Array(t) => t.len(),
            _ => panic!("the test model has a token list"),
        };
        let mut md: Vec<(String, Value)> = tiny.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        md.extend(real.metadata.iter().filter(|(k, _)| k.starts_with("tokenizer.")).map(|(k, v)| (k.clone(), v.clone())));
        let mut tensors: Vec<(String, QTensor)> = tiny
            .tensor_infos
            .keys()
            .filter(|n| *n != "token_embd.weight")
            .map(|n| (n.clone(), tiny.tensor(&mut cursor, n, &Device::Cpu).unwrap()))
            .collect();
        let mut rng = checks::Lcg(9);
        let embd = Tensor::from_vec(rng.vec(vocab * 64, 1.0), (vocab, 64), &Device::Cpu).unwrap();
        tensors.push(("token_embd.weight".into(), QTensor::quantize(&embd, GgmlDType::Q8_0).unwrap()));
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &md_refs, &t_refs).unwrap();
        out.into_inner()
    })
}

/// The seed GGUF as a checkpoint folder (config.json, tokenizer.json,
/// tokenizer_config.json with the template, model.safetensors in f32).
fn seed_checkpoint() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-seed-checkpoint");
        three_answers::local_files::write_checkpoint_from_gguf(seed_gguf(), &dir, candle_core::DType::F32).unwrap();
        dir
    })
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(seed_checkpoint().join(file)).unwrap()
}

/// Loads, and when that works, answers two tokens: `Ok` or `Err` are both fine.
fn load_and_answer(files: ModelFiles<'_>, precision: Precision) {
    if let Ok(mut model) = LanguageModel::load(files, precision) {
        let _ = model.generate("<|im_start|>user\nHi<|im_end|>\n", SamplingSettings::greedy(2));
        let _ = model.chat_prompt(&[Message::user("Hi")], true);
    }
}

fn checkpoint(config: Vec<u8>, tokenizer: Vec<u8>, tokenizer_config: Vec<u8>, weights: Vec<u8>) -> CheckpointFiles<'static> {
    CheckpointFiles {
        config_json: config,
        tokenizer_json: tokenizer,
        tokenizer_config_json: Some(tokenizer_config),
        generation_config_json: None,
        safetensors: vec![Box::new(std::io::Cursor::new(weights)) as Box<dyn ReadSeek>],
    }
}

/// The corpus files whose names start with `prefix`.
fn corpus(prefix: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))).map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn fuzz_gguf_loader() {
    let seed = seed_gguf();
    // The header: everything before the first tensor's data (metadata, the tensor table).
    let hot = seed.len() - 2_000_000.min(seed.len() / 2);
    for bytes in corpus("gguf-") {
        load_and_answer(ModelFiles::Gguf(&bytes), Precision::Auto);
    }
    fuzz("gguf", |rng, _| {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + below(rng, 3) {
            mutate_bytes(rng, &mut bytes, hot);
        }
        load_and_answer(ModelFiles::Gguf(&bytes), Precision::ALL[below(rng, Precision::ALL.len())]);
    });
}

#[test]
fn fuzz_checkpoint_config_and_safetensors_header() {
    let (config, tokenizer, tokenizer_config, weights) = (read("config.json"), read("tokenizer.json"), read("tokenizer_config.json"), read("model.safetensors"));
    let header_end = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    for bytes in corpus("config-") {
        load_and_answer(ModelFiles::Checkpoint(checkpoint(bytes, tokenizer.clone(), tokenizer_config.clone(), weights.clone())), Precision::Auto);
    }
    fuzz("config+safetensors", |rng, n| {
        let (mut config, mut weights) = (config.clone(), weights.clone());
        if n % 2 == 0 {
            let mut v: serde_json::Value = serde_json::from_slice(&config).unwrap();
            mutate_json(rng, &mut v);
            config = serde_json::to_vec(&v).unwrap();
        } else {
            mutate_bytes(rng, &mut weights, header_end);
        }
        load_and_answer(ModelFiles::Checkpoint(checkpoint(config, tokenizer.clone(), tokenizer_config.clone(), weights)), Precision::ALL[below(rng, 5)]);
    });
}

#[test]
fn fuzz_tokenizer_loader() {
    let tokenizer = read("tokenizer.json");
    let parsed: serde_json::Value = serde_json::from_slice(&tokenizer).unwrap();
    let encode = |bytes: &[u8]| {
        if let Ok(t) = TextTokenizer::from_json(bytes) {
            if let Ok(ids) = t.encode("<|im_start|>user\nCafé 2024 ünïcödé?\n<|im_end|>") {
                let _ = t.decode(&ids, false);
            }
        }
    };
    for bytes in corpus("tokenizer-") {
        encode(&bytes);
    }
    fuzz("tokenizer", |rng, n| {
        let bytes = if n % 4 == 3 {
            let mut b = tokenizer.clone();
            mutate_bytes(rng, &mut b, 4096);
            b
        } else {
            let mut v = parsed.clone();
            // The model part is most of the file: aim at the rest too.
            if let (serde_json::Value::Object(m), true) = (&mut v, below(rng, 2) == 0) {
                let keys: Vec<String> = m.keys().filter(|k| *k != "model").cloned().collect();
                if let Some(k) = keys.get(below(rng, keys.len())) {
                    mutate_json(rng, m.get_mut(k).expect("listed"));
                }
            } else {
                mutate_json(rng, &mut v);
            }
            serde_json::to_vec(&v).unwrap()
        };
        // Kept on disk while it runs: after a crash, the input to replay (and add to the corpus).
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-tokenizer-case.json");
        std::fs::write(&path, &bytes).unwrap();
        describe(format!("tokenizer: the input is {}", path.display()));
        encode(&bytes);
    });
}

#[test]
fn fuzz_template_rendering() {
    let numbers = ["0", "1", "7", "1000", "100000", "4000000000", "1099511627776", "-1"];
    // Pieces of real chat templates and of hostile ones, joined at random.
    // Left out, because the renderer cannot bound them (RELIABILITY.md): `in`
    // over a repeated sequence (one instruction walking 4e9 items) and a
    // string doubled in a loop; in the browser the page's watchdog and crash
    // restart end those, naming the model.
    let pieces = [
        "{% for m in messages %}", "{% endfor %}", "{{ m.content }}", "{{ m['role'] }}", "{% if add_generation_prompt %}",
        "{% endif %}", "{% if m.role == 'system' %}", "{% else %}", "{{ bos_token }}{{ eos_token }}", "<|im_start|>", "\n",
        "{{ 'x' * N }}", "{{ messages | length }}", "{{ range(N) | list | join(',') }}", "{{ ([1, 2] * N) | sort | first }}",
        "{{ ([1, 2] * N) | list }}", "{{ ([0] * N) | map('string') | join }}", "{{ 'ab' | replace('a', 'x' * N) }}",
        "{{ ('a' * N).replace('a', 'bb') }}", "{{ N * N }}", "{{ loop.index }}", "{{ raise_exception('no') }}",
        "{% for i in range(N) %}", "{{ m.content.strip().upper() }}", "{{ 'x' | indent(N) }}", "{{ [0] | batch(N) | list }}",
        "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}", "{{ messages[N] }}", "{{ (messages * N) | selectattr('role') | list }}",
        "{{ 'x' ~ 'y' * N }}", "{% set a = [0] * N %}{{ a | length }}", "{{ a | dictsort }}", "{{ N ** N }}", "{{ '%s' | format(N) }}",
        "{{ messages | groupby('role') | list }}", "{{ ([0] * N) | unique | list }}", "{{ ([0] * N) | sum }}", "{% break %}",
    ];
    for bytes in corpus("template-") {
        if let Ok(t) = ChatTemplate::new(&String::from_utf8_lossy(&bytes), "<s>", "</s>") {
            let _ = t.render(&[Message::user("Hi")], true);
        }
    }
    fuzz("template", |rng, _| {
        let source: String = (0..1 + below(rng, 10))
            .map(|_| pieces[below(rng, pieces.len())].replace('N', numbers[below(rng, numbers.len())]))
            .collect();
        describe(format!("template: {source}"));
        if let Ok(t) = ChatTemplate::new(&source, "<s>", "</s>") {
            let messages = [Message::system("Be brief."), Message::user("What is the capital of France?"), Message::assistant("Paris.")];
            let _ = t.render(&messages[..1 + below(rng, 3)], below(rng, 2) == 0);
        }
    });
}
