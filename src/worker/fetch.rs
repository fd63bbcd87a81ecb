//! Model files over HTTP, from inside the worker: one `fetch` per file, the
//! body read chunk by chunk into one buffer, progress posted as it arrives.
//! Errors are sentences that name the file and say what to try.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestInit, Response, WorkerGlobalScope};

use super::post;
use crate::protocol::{FromWorker, Slot};

/// Post progress at most every this many bytes (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;

/// The bytes of `url`. `optional`: a 404 gives `Ok(None)` instead of an error.
pub async fn fetch_file(slot: Slot, url: &str, file: &str, optional: bool) -> Result<Option<Vec<u8>>, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let init = RequestInit::new();
    init.set_referrer_policy(web_sys::ReferrerPolicy::NoReferrer);
    let unreachable = || {
        format!(
            "Could not download {file} from {url}: the server did not answer, or it does not allow this page to read it (CORS). Check the hub address and your connection."
        )
    };
    let response: Response = JsFuture::from(scope.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| unreachable())?
        .unchecked_into();
    let status = response.status();
    if status == 404 && optional {
        return Ok(None);
    }
    if status == 404 {
        return Err(format!("{file} was not found at {url} (HTTP 404). Check the model name: a repo such as HuggingFaceTB/SmolLM2-135M-Instruct, or owner/name/file.gguf."));
    }
    if !response.ok() {
        return Err(format!("Downloading {file} from {url} failed: HTTP {status} {}.", response.status_text()));
    }
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    let body = response.body().ok_or_else(|| format!("{file}: the server sent no body."))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes: Vec<u8> = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut last_posted = 0u64;
    post(&FromWorker::Progress { slot, file: file.to_string(), done: 0, total });
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("The download of {file} broke off after {} bytes ({}). Try again.", bytes.len(), js_error(&e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| format!("{file}: unreadable data"))?.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        let n = bytes.len() as u64;
        if n - last_posted >= PROGRESS_STEP {
            last_posted = n;
            post(&FromWorker::Progress { slot, file: file.to_string(), done: n, total });
        }
    }
    let n = bytes.len() as u64;
    if let Some(t) = total {
        if n < t {
            return Err(format!("The download of {file} stopped at {n} of {t} bytes. Try again."));
        }
    }
    post(&FromWorker::Progress { slot, file: file.to_string(), done: n, total: Some(total.unwrap_or(n).max(n)) });
    Ok(Some(bytes))
}

fn js_error(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).or_else(|| e.as_string()).unwrap_or_else(|| "unknown error".into())
}
