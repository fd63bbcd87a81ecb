//! The browser's cache of model files, from the worker: keyed by URL, filled
//! while a download streams (each network chunk goes to the download's store
//! and into the cache's stream at once).
//!
//! Why the Cache API and not OPFS: it is keyed by URL (exactly our key), its
//! `put` takes a streaming `Response` so a file is written while it downloads,
//! it works the same in the worker and in the page (the storage panel lists
//! and deletes from either), and a failed or refused stream (checksum
//! mismatch, full quota) leaves no half-written entry behind. The random
//! access the engine needs (it reads weights tensor by tensor) comes from
//! the cached body's `Blob`, sliced with `FileReaderSync`, which a worker has
//! in every browser; OPFS's sync access handles would give the same, but are
//! missing in older Safari and cannot be listed or deleted from the page.
//!
//! A tiny static script, `web/cache_sink.js` (loaded with `importScripts`:
//! the worker is a classic script without wasm-bindgen snippets, and code
//! built with `new Function` would need 'unsafe-eval'), owns the stream
//! controller and the pending `put`.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::protocol::{split_file_url, CachedFile};

pub const CACHE_NAME: &str = "three-answers-models-v1";
/// A second cache, keyed by the same URLs: each complete file's [`Seal`].
const SEALS_NAME: &str = "three-answers-seals-v1";
/// Header of a marker entry for an optional file the server does not have.
const MISSING: &str = "x-three-answers-missing";


/// The static script that defines `threeAnswersCacheSink` (next to the worker).
const SINK_SCRIPT: &str = "./cache_sink.js";

thread_local! {
    static SINK_FN: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// `threeAnswersCacheSink`, loaded once with `importScripts`.
fn sink_function() -> Result<js_sys::Function, String> {
    if let Some(f) = SINK_FN.with(|f| f.borrow().clone()) {
        return Ok(f);
    }
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    scope.import_scripts(&js_sys::Array::of1(&SINK_SCRIPT.into())).map_err(|e| format!("{SINK_SCRIPT} did not load ({})", js_error(&e)))?;
    let f: js_sys::Function = get(&js_sys::global(), "threeAnswersCacheSink").dyn_into().map_err(|_| format!("{SINK_SCRIPT} defines no cache sink"))?;
    SINK_FN.with(|s| *s.borrow_mut() = Some(f.clone()));
    Ok(f)
}

fn get(o: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

async fn call_async(o: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: js_sys::Function = get(o, method).dyn_into().map_err(|_| JsValue::from_str(&format!("no {method}")))?;
    let arr: js_sys::Array = args.iter().collect();
    let p = f.apply(o, &arr)?;
    JsFuture::from(js_sys::Promise::resolve(&p)).await
}

pub fn js_error(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", String::from(err.name()), String::from(err.message()));
    }
    let name = get(e, "name").as_string();
    let msg = get(e, "message").as_string();
    match (name, msg) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (_, Some(m)) => m,
        _ => e.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}

/// The model cache, or why there is none (e.g. an opaque origin).
pub async fn open() -> Result<JsValue, String> {
    open_named(CACHE_NAME).await
}

async fn open_named(name: &str) -> Result<JsValue, String> {
    let caches = get(&js_sys::global(), "caches");
    if caches.is_undefined() || caches.is_null() {
        return Err("this browser gives the page no Cache API here (a private window or a non-HTTPS address?)".into());
    }
    call_async(&caches, "open", &[name.into()]).await.map_err(|e| js_error(&e))
}

/// What a complete cached file is: its length and sha256, recorded only once
/// the model made from it has loaded. A cached file is used only when it
/// still matches its seal, so a cut, damaged or never-parsed entry is
/// downloaded again instead of failing (or answering wrongly) on every visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub bytes: u64,
    pub sha256: String,
}

pub async fn seal(url: &str, seal: &Seal) {
    put_note(url, &serde_json::json!({ "bytes": seal.bytes, "sha256": seal.sha256 })).await;
}

pub async fn seal_of(url: &str) -> Option<Seal> {
    let v = note_of(url).await?;
    let sha256 = v["sha256"].as_str()?.to_string();
    (sha256.len() == 64).then_some(Seal { bytes: v["bytes"].as_u64()?, sha256 })
}

/// A small JSON note kept with the seals, keyed by a URL under the model's
/// `{hub}/{owner}/{name}/resolve/`, so Delete removes it with the model.
pub async fn put_note(url: &str, note: &serde_json::Value) {
    let Ok(seals) = open_named(SEALS_NAME).await else { return };
    if let Ok(r) = web_sys::Response::new_with_opt_str(Some(&note.to_string())) {
        let _ = call_async(&seals, "put", &[url.into(), r.into()]).await;
    }
}

pub async fn note_of(url: &str) -> Option<serde_json::Value> {
    let seals = open_named(SEALS_NAME).await.ok()?;
    let r: web_sys::Response = call_async(&seals, "match", &[url.into()]).await.ok()?.dyn_into().ok()?;
    let text = JsFuture::from(r.text().ok()?).await.ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

/// A cached response for `url`: `Some(None)` is a marker "the server has no such file".
pub async fn lookup(url: &str) -> Option<Option<web_sys::Response>> {
    let cache = open().await.ok()?;
    let r = call_async(&cache, "match", &[url.into()]).await.ok()?;
    let r: web_sys::Response = r.dyn_into().ok()?;
    if r.headers().has(MISSING).unwrap_or(false) {
        return Some(None);
    }
    Some(Some(r))
}

/// Remembers that an optional file does not exist on the server, so a later
/// visit needs no request for it.
pub async fn store_missing(url: &str) {
    let Ok(cache) = open().await else { return };
    let init = web_sys::ResponseInit::new();
    init.set_status(404);
    let headers = web_sys::Headers::new().expect("Headers");
    let _ = headers.set(MISSING, "1");
    init.set_headers(&headers);
    if let Ok(r) = web_sys::Response::new_with_opt_str_and_init(None, &init) {
        let _ = call_async(&cache, "put", &[url.into(), r.into()]).await;
    }
}

/// Forgets `url`: its entry and its seal.
pub async fn delete(url: &str) {
    for name in [CACHE_NAME, SEALS_NAME] {
        if let Ok(cache) = open_named(name).await {
            let _ = call_async(&cache, "delete", &[url.into()]).await;
        }
    }
}

/// A cache entry being written while its download streams.
pub struct Sink(JsValue);

impl Sink {
    /// `Err`: the cache cannot be opened (the download goes on, from memory).
    pub async fn start(url: &str, simulate_full: bool) -> Result<Sink, String> {
        let cache = if simulate_full { JsValue::NULL } else { open().await? };
        let f = sink_function()?;
        let sink = f.call3(&JsValue::NULL, &cache, &url.into(), &simulate_full.into()).map_err(|e| js_error(&e))?;
        Ok(Sink(sink))
    }

    pub fn write(&self, chunk: &js_sys::Uint8Array) {
        if let Ok(f) = get(&self.0, "write").dyn_into::<js_sys::Function>() {
            let _ = f.call1(&self.0, chunk);
        }
    }

    /// Ends the entry; `Err(words)` when the cache refused it (e.g. quota).
    pub async fn finish(self) -> Result<(), String> {
        match call_async(&self.0, "finish", &[]).await {
            Ok(v) => match v.as_string() {
                Some(e) => Err(e),
                None => Ok(()),
            },
            Err(e) => Err(js_error(&e)),
        }
    }

    /// Throws the entry away (checksum mismatch, failed download).
    pub async fn abort(self, reason: &str) {
        let _ = call_async(&self.0, "abort", &[reason.into()]).await;
    }
}

/// Every cached model file, with its size.
pub async fn list() -> Result<Vec<CachedFile>, String> {
    let cache = open().await?;
    let keys: js_sys::Array = call_async(&cache, "keys", &[]).await.map_err(|e| js_error(&e))?.unchecked_into();
    let mut out = vec![];
    for req in keys.iter() {
        let url = get(&req, "url").as_string().unwrap_or_default();
        let Ok(resp) = call_async(&cache, "match", &[req.clone()]).await else { continue };
        let Ok(resp) = resp.dyn_into::<web_sys::Response>() else { continue };
        if resp.headers().has(MISSING).unwrap_or(false) {
            continue;
        }
        // A cached body is on disk: its Blob's size does not read it.
        let bytes = match resp.blob() {
            Ok(p) => JsFuture::from(p).await.ok().map(|b| b.unchecked_into::<web_sys::Blob>().size() as u64).unwrap_or(0),
            Err(_) => 0,
        };
        let (model, file) = split_file_url(&url).unwrap_or_else(|| (url.clone(), url.clone()));
        out.push(CachedFile { url, model, file, bytes });
    }
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

/// Deletes every entry of one model (`{hub}/{owner}/{name}`), markers,
/// seals and pins included; the count is of files and markers.
pub async fn delete_model(model: &str) -> Result<usize, String> {
    delete_prefix(&format!("{}/resolve/", model.trim_end_matches('/'))).await
}

/// Deletes every entry whose URL starts with `prefix`, in both caches.
pub async fn delete_prefix(prefix: &str) -> Result<usize, String> {
    let mut n = 0;
    for name in [CACHE_NAME, SEALS_NAME] {
        let cache = open_named(name).await?;
        let keys: js_sys::Array = call_async(&cache, "keys", &[]).await.map_err(|e| js_error(&e))?.unchecked_into();
        for req in keys.iter() {
            if get(&req, "url").as_string().is_some_and(|u| u.starts_with(prefix)) {
                let _ = call_async(&cache, "delete", &[req]).await;
                n += usize::from(name == CACHE_NAME);
            }
        }
    }
    Ok(n)
}

/// `navigator.storage.estimate()`: (usage, quota) in bytes.
pub async fn estimate() -> (Option<f64>, Option<f64>) {
    let storage = get(&get(&js_sys::global(), "navigator"), "storage");
    if storage.is_undefined() {
        return (None, None);
    }
    match call_async(&storage, "estimate", &[]).await {
        Ok(e) => (get(&e, "usage").as_f64(), get(&e, "quota").as_f64()),
        Err(_) => (None, None),
    }
}
