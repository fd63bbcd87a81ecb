//! Model files, from inside the worker: from the browser's cache when it has
//! them, else over HTTP (one `fetch` per file, the body read chunk by chunk
//! into a [`Store`] and, at the same time, streamed into the cache), or from
//! files the user picked. Progress is posted as bytes arrive. A body cut
//! midway is resumed with a Range request from where it stopped; where the
//! server states a sha256 (the `X-Linked-Etag` / `ETag` of Hub LFS files) it
//! is checked before the file is used or cached.
//! Errors are sentences that name the file and say what to try.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestInit, Response, WorkerGlobalScope};

use super::cache::{self, js_error, Seal};
pub use super::data::Data;
use super::data::{hex, sha256_of_blob, too_big, Store, MAX_SMALL_FILE};
use super::hub::{refusal_words, retry_after_s, Repo};
use super::post;
use crate::protocol::{CacheMode, FromWorker, Origin, Slot};
use crate::words::{bytes, cache_refusal, unreachable_words};

/// Post progress at most every this many bytes (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;
/// Range requests after a body breaks off, before giving up.
const RESUMES: u32 = 3;

fn progress(slot: Slot, file: &str, done: u64, total: Option<u64>, origin: Origin) {
    post(&FromWorker::Progress { slot, file: file.to_string(), done, total, origin });
}

/// Reads a stream to its end into `store`, posting progress. `on_chunk` sees
/// every chunk (the cache sink and the hash). `Err` carries the JS error words.
async fn read_stream(
    stream: web_sys::ReadableStream,
    store: &mut Store,
    skip: &mut u64,
    mut on_chunk: impl FnMut(&js_sys::Uint8Array, &[u8]),
    mut on_progress: impl FnMut(u64),
) -> Result<(), String> {
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut last_posted = store.len();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_error(&e))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            return Ok(());
        }
        let mut value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| "unreadable data".to_string())?.unchecked_into();
        // A server that ignored our Range header: drop what we already have.
        if *skip > 0 {
            let n = (*skip).min(value.length() as u64);
            *skip -= n;
            value = value.subarray(n as u32, value.length());
            if value.length() == 0 {
                continue;
            }
        }
        let copied = store.push(&value)?;
        on_chunk(&value, copied);
        let n = store.len();
        if n - last_posted >= PROGRESS_STEP {
            last_posted = n;
            on_progress(n);
        }
    }
}

/// The sha256 a server states for a file: a 64-hex `X-Linked-Etag`, or
/// `ETag` when the response was not redirected. (The Hub redirects LFS files
/// to a CDN whose ETag may be another 64-hex hash, e.g. a Xet content hash;
/// there the sha256 comes from the Hub's tree listing instead, see
/// [`Repo::expected`].)
fn stated_sha256(r: &Response) -> Option<String> {
    let headers: &[&str] = if r.redirected() { &["x-linked-etag"] } else { &["x-linked-etag", "etag"] };
    headers.iter().find_map(|h| {
        let v = r.headers().get(h).ok().flatten()?;
        let v = v.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase();
        (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(v)
    })
}

/// A GET of `url` from byte `from` on (0: all of it).
pub(super) async fn request(url: &str, from: u64) -> Result<Response, wasm_bindgen::JsValue> {
    request_range(url, (from > 0).then(|| format!("bytes={from}-"))).await
}

/// A GET of `url`'s first `n` bytes (a server may send more, or all).
pub(super) async fn request_prefix(url: &str, n: u64) -> Result<Response, wasm_bindgen::JsValue> {
    request_range(url, Some(format!("bytes=0-{}", n.saturating_sub(1)))).await
}

async fn request_range(url: &str, range: Option<String>) -> Result<Response, wasm_bindgen::JsValue> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let init = RequestInit::new();
    init.set_referrer_policy(web_sys::ReferrerPolicy::NoReferrer);
    // Model files are public: no cookies or HTTP auth go to a hub a link names.
    init.set_credentials(web_sys::RequestCredentials::Omit);
    // The model cache keeps the files: a second copy in the HTTP cache would
    // double the disk a 270 MB file takes (the CDN says max-age a week), and
    // a listing or commit check must see the hub as it is now.
    init.set_cache(web_sys::RequestCache::NoStore);
    if let Some(range) = range {
        let headers = web_sys::Headers::new()?;
        headers.set("Range", &range)?;
        init.set_headers(&headers);
    }
    Ok(JsFuture::from(scope.fetch_with_str_and_init(url, &init)).await?.unchecked_into())
}

/// One model file to get from a hub.
#[derive(Clone, Copy)]
pub struct FileRequest<'a> {
    pub slot: Slot,
    pub repo: &'a Repo,
    pub file: &'a str,
    /// A 404 gives `Ok(None)` instead of an error.
    pub optional: bool,
    /// Return the file as a `Blob` (outside wasm memory) rather than bytes.
    pub blob: bool,
}

/// The bytes of a file (cache first).
pub async fn fetch_file(req: FileRequest<'_>) -> Result<Option<Data>, String> {
    let FileRequest { slot, repo, file, optional, blob } = req;
    let url = &repo.url(file);
    if repo.mode == CacheMode::Use {
        match cache::lookup(url).await {
            Some(None) if optional => return Ok(None),
            Some(Some(r)) => match from_cache(r, url, file, slot, blob).await {
                Ok(data) => {
                    repo.record_use(file);
                    return Ok(Some(data));
                }
                Err(why) => {
                    cache::delete(url).await;
                    let message = format!("The copy of {file} kept in this browser {why}, so it was deleted and is downloaded again.");
                    post(&FromWorker::Warning { slot, message });
                }
            },
            _ => {}
        }
    }
    download(req).await
}

/// A cached file, used only when it matches its seal. `Err`: why not, in words.
async fn from_cache(r: Response, url: &str, file: &str, slot: Slot, blob: bool) -> Result<Data, String> {
    let seal = cache::seal_of(url).await.ok_or("was never confirmed complete (its download or the first load of the model did not finish)")?;
    let unreadable = |e: wasm_bindgen::JsValue| format!("cannot be read ({})", js_error(&e));
    // A cached body is on disk: its Blob is read slice by slice.
    let body: web_sys::Blob = JsFuture::from(r.blob().map_err(unreadable)?).await.map_err(unreadable)?.unchecked_into();
    let n = body.size() as u64;
    if n != seal.bytes {
        return Err(format!("is {} long, but was {} when it was downloaded", bytes(n), bytes(seal.bytes)));
    }
    if !blob && n > MAX_SMALL_FILE {
        return Err(format!("is {}, more than a model's small file takes", bytes(n)));
    }
    progress(slot, file, 0, Some(n), Origin::Cache);
    let sha = sha256_of_blob(&body, |done| progress(slot, file, done, Some(n), Origin::Cache))?;
    if sha != seal.sha256 {
        return Err("is damaged: its sha256 is not the one recorded when it was downloaded".into());
    }
    progress(slot, file, n, Some(n), Origin::Cache);
    match blob {
        true => Ok(Data::Blob(body)),
        false => Data::Blob(body).into_bytes().map(Data::Bytes),
    }
}

async fn download(req: FileRequest<'_>) -> Result<Option<Data>, String> {
    let FileRequest { slot, repo, file, blob, .. } = req;
    let asked = repo.url(file);
    let Some(response) = first_response(&req, &asked).await? else { return Ok(None) };
    // The first file names the commit; it is cached under it, as every later one.
    repo.learn_commit(&response);
    let url = &repo.url(file);
    // With Content-Encoding the length is the compressed size: then only a floor.
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    if let Some(words) = total.and_then(|t| too_big(file, t, blob)) {
        cancel_body(&response);
        return Err(words);
    }
    let stated = stated_sha256(&response);
    let listed = repo.expected(file).await;
    // A small file's git blob SHA-1 hashes a header with its length first.
    let mut git_sha1 = listed.as_ref().and_then(|e| {
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", e.size).as_bytes());
        Some((h, e.git_sha1.clone()?))
    });
    let expected = stated.or_else(|| listed.as_ref().and_then(|e| e.sha256.clone()));
    let mode = repo.mode;
    let sink = match mode {
        CacheMode::Off => None,
        _ => match cache::Sink::start(url, mode == CacheMode::SimulateFull).await {
            Ok(s) => Some(s),
            Err(e) => {
                post(&FromWorker::Warning { slot, message: format!("{file} will not be kept for the next visit: {e}. The model runs from memory this time.") });
                None
            }
        },
    };
    let mut store = Store::new(blob, total);
    let mut hasher = Sha256::new();
    progress(slot, file, 0, total, Origin::Network);
    let on_chunk = |chunk: &js_sys::Uint8Array, copied: &[u8]| {
        hasher.update(copied);
        if let Some((h, _)) = git_sha1.as_mut() {
            h.update(copied);
        }
        if let Some(s) = &sink {
            s.write(chunk);
        }
    };
    let read = read_with_resume(url, response, &mut store, total, on_chunk, |n| progress(slot, file, n, total, Origin::Network)).await;
    let n = store.len();
    if let Err((why, resumes)) = read {
        if let Some(s) = sink {
            s.abort("download failed").await;
        }
        let tried = if resumes > 0 { format!(" Resuming from where it stopped was tried {resumes} time(s) and failed too.") } else { String::new() };
        return Err(format!(
            "The download of {file} from {url} broke off after {} of {} ({why}).{tried} Check your connection and reload the page to try again, \
             or use local files or a mirror.",
            bytes(n),
            total.map(bytes).unwrap_or_else(|| "an unknown size".into())
        ));
    }
    let got = hex(&hasher.finalize());
    let git = git_sha1.take().map(|(h, want)| (hex(&h.finalize()), want));
    let mismatch = match (expected, git) {
        (Some(want), _) if got != want => Some(format!("its sha256 is {got}, but the server says it should be {want}")),
        (_, Some((sha1, want))) if sha1 != want => Some(format!("its git blob hash is {sha1}, but the hub's file list says {want}")),
        _ => None,
    };
    if let Some(why) = mismatch {
        if let Some(s) = sink {
            s.abort("checksum mismatch").await;
        }
        return Err(format!(
            "{file} from {asked} is corrupt: {why}. It was not used and not cached. \
             Reload to download it again; if this repeats, the mirror or proxy in between is serving a damaged or different file."
        ));
    }
    progress(slot, file, n, Some(n), Origin::Network);
    let cached = match sink {
        Some(s) => finish_caching(s, slot, file).await,
        None => false,
    };
    if cached {
        repo.record_download(url, Seal { bytes: n, sha256: got });
    }
    repo.record_use(file);
    Ok(Some(match store {
        Store::Bytes(b) => Data::Bytes(b),
        Store::Chunks { chunks, .. } => {
            // Cached: the disk-backed copy; else a Blob of the chunks (JS memory).
            let from_cache = match (cached, cache::lookup(url).await) {
                (true, Some(Some(r))) => match r.blob() {
                    Ok(p) => JsFuture::from(p).await.ok().map(|b| b.unchecked_into::<web_sys::Blob>()).filter(|b| b.size() as u64 == n),
                    Err(_) => None,
                },
                _ => None,
            };
            match from_cache {
                Some(b) => Data::Blob(b),
                None => Data::Blob(web_sys::Blob::new_with_u8_array_sequence(&chunks).map_err(|e| format!("{file}: {}", js_error(&e)))?),
            }
        }
    }))
}

/// The first answer for a file, or the server's refusal in words. `Ok(None)`:
/// an optional file that is not there (remembered in the cache). A 429 with
/// a short `Retry-After` is tried once more after waiting it out.
async fn first_response(req: &FileRequest<'_>, url: &str) -> Result<Option<Response>, String> {
    let FileRequest { repo, file, optional, .. } = *req;
    let mut waited = false;
    loop {
        let response = request(url, 0).await.map_err(|e| unreachable_words(file, url, &js_error(&e)))?;
        match response.status() {
            404 if optional => {
                if repo.mode == CacheMode::Use {
                    cache::store_missing(url).await;
                }
                return Ok(None);
            }
            429 if !waited && retry_after_s(&response).is_some_and(|s| s <= 10) => {
                waited = true;
                let s = retry_after_s(&response).unwrap_or(1);
                post(&FromWorker::Warning { slot: req.slot, message: format!("The hub asked to wait {s} s before more downloads (HTTP 429); trying again.") });
                sleep_ms(s as u32 * 1000).await;
            }
            _ if !response.ok() => return Err(refusal_words(repo, &response, file, url)),
            _ => return Ok(Some(response)),
        }
    }
}

/// Why one body stopped short.
enum Broke {
    /// The connection broke: asking again from where it stopped may work.
    Retry(String),
    /// The server answered the resume wrongly: asking again will not help.
    Fatal(String),
}

/// Reads `response`'s body into `store`. When it breaks off, asks again from
/// where it stopped (`Range: bytes=N-`, which needs no CORS preflight and
/// survives the Hub's redirect), up to [`RESUMES`] times. `Err`: why, in
/// words, and how many resumes were tried.
async fn read_with_resume(
    url: &str,
    mut response: Response,
    store: &mut Store,
    total: Option<u64>,
    mut on_chunk: impl FnMut(&js_sys::Uint8Array, &[u8]),
    on_progress: impl Fn(u64),
) -> Result<(), (String, u32)> {
    let mut resumes = 0;
    loop {
        let why = match read_body(&response, store, total, &mut on_chunk, &on_progress).await {
            Ok(()) => return Ok(()),
            Err(Broke::Fatal(why)) => why,
            Err(Broke::Retry(_)) if resumes < RESUMES => {
                resumes += 1;
                sleep_ms(300 * resumes).await;
                match request(url, store.len()).await {
                    Ok(r) => {
                        response = r;
                        continue;
                    }
                    Err(e) => js_error(&e),
                }
            }
            Err(Broke::Retry(why)) => why,
        };
        return Err((why, resumes));
    }
}

/// One body (the first, or a resumed one) appended to `store`.
async fn read_body(
    response: &Response,
    store: &mut Store,
    total: Option<u64>,
    on_chunk: &mut impl FnMut(&js_sys::Uint8Array, &[u8]),
    on_progress: &impl Fn(u64),
) -> Result<(), Broke> {
    let before = store.len();
    let mut skip = 0u64;
    if before > 0 {
        // A resumed request: 206 from where we stopped, or 200 from the start.
        match response.status() {
            206 => {
                let range = response.headers().get("content-range").ok().flatten().unwrap_or_default();
                let start = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<u64>().ok());
                if start.is_some_and(|s| s != before) {
                    return Err(Broke::Fatal(format!("the server resumed at the wrong place ({range})")));
                }
            }
            200 => skip = before,
            s => return Err(Broke::Fatal(format!("HTTP {s} when asked to resume"))),
        }
    }
    let body = response.body().ok_or_else(|| Broke::Fatal("the server sent no body".into()))?;
    read_stream(body, store, &mut skip, on_chunk, on_progress).await.map_err(Broke::Retry)?;
    match (store.len(), total) {
        (n, Some(t)) if n < t => Err(Broke::Retry(format!("the body ended at {n} of {t} bytes"))),
        _ => Ok(()),
    }
}

pub(crate) async fn sleep_ms(ms: u32) {
    let waiting = JsFuture::from(js_sys::Promise::new(&mut |resolve, _| {
        let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    }));
    let _ = waiting.await;
}

/// Closes the cache entry a download was streamed into; true when it is
/// kept. A full quota or another failure is said to the page, in words.
async fn finish_caching(sink: cache::Sink, slot: Slot, file: &str) -> bool {
    let Err(e) = sink.finish().await else { return true };
    post(&FromWorker::Warning { slot, message: cache_refusal(file, &e) });
    false
}

/// The bytes of a file the user picked (read here, in the worker: nothing is uploaded).
pub async fn read_local(slot: Slot, file: &web_sys::File) -> Result<Vec<u8>, String> {
    let name = file.name();
    let total = file.size() as u64;
    if let Some(words) = too_big(&name, total, false) {
        return Err(words);
    }
    let mut store = Store::new(false, Some(total));
    progress(slot, &name, 0, Some(total), Origin::Local);
    read_stream(file.stream(), &mut store, &mut 0, |_, _| {}, |n| progress(slot, &name, n, Some(total), Origin::Local))
        .await
        .map_err(|e| format!("Could not read the local file {name} ({e}). Pick it again; it may have been moved or changed."))?;
    let Store::Bytes(bytes) = store else { unreachable!("bytes store") };
    progress(slot, &name, bytes.len() as u64, Some(bytes.len() as u64), Origin::Local);
    Ok(bytes)
}

/// A body that will not be read: the browser stops fetching it rather than
/// hold the connection open.
pub fn cancel_body(r: &Response) {
    if let Some(body) = r.body() {
        let _ = body.cancel();
    }
}

/// At most `n` bytes of a body, then the rest is cancelled (a server that
/// ignores the Range header must not make us read a whole model).
pub async fn first_bytes(r: &Response, n: u64) -> Result<Vec<u8>, String> {
    let body = r.body().ok_or("the server sent no body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::new();
    while (out.len() as u64) < n {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_error(&e))?;
        if js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true) {
            break;
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| "unreadable data".to_string())?.unchecked_into();
        let take = (value.length() as u64).min(n - out.len() as u64) as u32;
        let start = out.len();
        out.resize(start + take as usize, 0);
        value.subarray(0, take).copy_to(&mut out[start..]);
    }
    let _ = reader.cancel();
    Ok(out)
}
