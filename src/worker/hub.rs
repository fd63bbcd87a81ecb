//! One model's repo on a Hugging Face-style hub, while the worker loads it:
//! which commit its files come from, what the hub's file listing says each
//! file must hash to, and the pin (a note kept with the cache's seals) that
//! remembers which commit a revision named when the model was downloaded.
//! With the pin a later visit reads the same files with no request at all;
//! and a repo whose `main` moves during a download cannot mix two commits,
//! since every file after the first is asked for at the commit the first
//! one came from.
//!
//! What the Hub tells a page on another origin (scripts/hub-emulator.py
//! reproduces it for the tests): `resolve/{rev}/{file}` redirects an LFS file
//! to a CDN, and fetch never shows the redirect's headers (`X-Linked-Etag`,
//! `X-Repo-Commit`); a small file gets a same-host 307 whose final answer
//! exposes `X-Repo-Commit`. `api/models/{repo}/tree/{rev}` lists each file's
//! size and hash (`lfs.oid`, a sha256, or the git blob SHA-1 `oid`), and
//! `api/models/{repo}/revision/{rev}` names the commit (`sha`). A mirror or a
//! static host has neither API: then its files are keyed by the revision
//! and checked only against what the server states.

use std::cell::RefCell;

use web_sys::Response;

use super::cache::{self, Seal};
use super::fetch::{cancel_body, first_bytes, request};
use super::post;
use crate::protocol::{file_url, is_commit, parse_tree, revision_url, tree_url, CacheMode, FromWorker, ModelSource, Slot, TreeEntry};
use crate::words::{hub_refusal, unreachable_words, Refusal};

/// A cached model is compared with its revision's newest commit at most this often.
const CHECK_EVERY_MS: f64 = 3_600_000.0;
/// The most an API answer (a revision, a folder's listing) may be: the
/// official repos' are a few kB.
const API_JSON_BYTES: u64 = 16 << 20;
/// The pin's key: a name under `resolve/{revision}/` that no repo file has.
const PIN_FILE: &str = ".three-answers-pin";

/// What a revision named when its model was last loaded from the hub.
#[derive(Clone, Debug, Default)]
struct Pin {
    /// `None`: the hub named no commit (a mirror): files keyed by revision.
    commit: Option<String>,
    /// The files that model needed (all sealed in the cache).
    files: Vec<String>,
    /// `Date.now()` of the last check that the revision still names `commit`.
    checked_ms: f64,
}

/// One model repo at one revision, for one load.
pub struct Repo {
    pub hub: String,
    pub name: String,
    pub revision: String,
    pub mode: CacheMode,
    pinned: Option<Pin>,
    /// The commit the pin named before a `fresh` load (its files are dropped
    /// once the new commit's model loaded).
    replaced: Option<String>,
    commit: RefCell<Option<String>>,
    /// Tree listings fetched, by (revision or commit, folder) (`None`: the hub has none).
    trees: RefCell<Vec<((String, String), Option<Vec<TreeEntry>>)>>,
    downloaded: RefCell<Vec<(String, Seal)>>,
    used: RefCell<Vec<String>>,
}

impl Repo {
    /// `fresh`: ignore the pin (the user asked for the revision's newest commit).
    pub async fn open(source: &ModelSource, name: &str, mode: CacheMode, fresh: bool) -> Repo {
        let revision = match source.revision.trim() {
            "" => "main".to_string(),
            r => r.to_string(),
        };
        let mut repo = Repo {
            hub: source.hub.trim_end_matches('/').to_string(),
            name: name.to_string(),
            revision,
            mode,
            pinned: None,
            replaced: None,
            commit: RefCell::new(None),
            trees: RefCell::new(vec![]),
            downloaded: RefCell::new(vec![]),
            used: RefCell::new(vec![]),
        };
        if is_commit(&repo.revision) {
            *repo.commit.borrow_mut() = Some(repo.revision.to_ascii_lowercase());
        } else if mode == CacheMode::Use {
            let pin = repo.read_pin().await;
            match fresh {
                true => repo.replaced = pin.and_then(|p| p.commit),
                false => {
                    *repo.commit.borrow_mut() = pin.as_ref().and_then(|p| p.commit.clone());
                    repo.pinned = pin;
                }
            }
        }
        repo
    }

    fn pin_url(&self) -> String {
        file_url(&self.hub, &self.name, &self.revision, PIN_FILE)
    }

    async fn read_pin(&self) -> Option<Pin> {
        let v = cache::note_of(&self.pin_url()).await?;
        let commit = v["commit"].as_str().filter(|c| is_commit(c)).map(str::to_string);
        let files = v["files"].as_array()?.iter().filter_map(|f| f.as_str().map(str::to_string)).collect();
        Some(Pin { commit, files, checked_ms: v["checked"].as_f64().unwrap_or(0.0) })
    }

    async fn write_pin(&self, pin: &Pin) {
        let note = serde_json::json!({ "commit": pin.commit, "files": pin.files, "checked": pin.checked_ms });
        cache::put_note(&self.pin_url(), &note).await;
    }

    pub fn commit(&self) -> Option<String> {
        self.commit.borrow().clone()
    }

    /// Where `file` is asked for: at the commit once it is known.
    pub fn url(&self, file: &str) -> String {
        file_url(&self.hub, &self.name, self.commit().as_deref().unwrap_or(&self.revision), file)
    }

    /// The first file's answer names the commit (`X-Repo-Commit`, readable
    /// when it was not redirected to another origin): every later file is
    /// asked for at that commit.
    pub fn learn_commit(&self, response: &Response) {
        if self.commit.borrow().is_some() {
            return;
        }
        if let Some(c) = response.headers().get("x-repo-commit").ok().flatten().map(|c| c.trim().to_ascii_lowercase()).filter(|c| is_commit(c)) {
            *self.commit.borrow_mut() = Some(c);
        }
    }

    /// The commit the revision names now, from the hub's API (before a file
    /// whose redirect would hide `X-Repo-Commit`, e.g. a GGUF). `Ok(None)`: no
    /// such API (a mirror); `Err`: the hub refused, or did not answer.
    async fn current_commit(&self, what: &str) -> Result<Option<String>, ApiError> {
        let url = revision_url(&self.hub, &self.name, &self.revision);
        let Some(json) = self.api_json(&url, what).await? else { return Ok(None) };
        Ok(json["sha"].as_str().map(|c| c.to_ascii_lowercase()).filter(|c| is_commit(c)))
    }

    /// Learns the commit from the API, unless it is known or pinned (a
    /// pinned mirror has none: asking again would cost a cached visit a
    /// request). No answer at all is no commit: a static mirror may not
    /// answer an API path with CORS, and the file's own download says what
    /// is wrong if the host is down.
    pub async fn ask_commit(&self, what: &str) -> Result<(), String> {
        if self.commit.borrow().is_none() && self.pinned.is_none() {
            let commit = match self.current_commit(what).await {
                Ok(c) => c,
                Err(ApiError::Refused(words)) => return Err(words),
                Err(ApiError::Unreachable(_)) => None,
            };
            *self.commit.borrow_mut() = commit;
        }
        Ok(())
    }

    /// An API answer as JSON. `Ok(None)`: no API here (an HTTP failure that
    /// is not the hub saying the repo is missing, gated or private).
    async fn api_json(&self, url: &str, what: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let r = request(url, 0)
            .await
            .map_err(|e| ApiError::Unreachable(unreachable_words(&format!("{what} of {}", self.name), url, &super::cache::js_error(&e))))?;
        let code = r.headers().get("x-error-code").ok().flatten();
        let refused = matches!(r.status(), 401 | 403) || matches!(code.as_deref(), Some("RepoNotFound" | "RevisionNotFound"));
        if refused || !r.ok() {
            cancel_body(&r);
            if !refused {
                return Ok(None);
            }
            let refusal = Refusal { status: r.status(), error_code: code.as_deref(), retry_after: None, file: what, repo: &self.name, revision: &self.revision, url };
            return Err(ApiError::Refused(hub_refusal(&refusal)));
        }
        // Bounded: a hostile hub's endless answer is "no listing", not a full memory.
        let Ok(bytes) = first_bytes(&r, API_JSON_BYTES + 1).await else { return Ok(None) };
        if bytes.len() as u64 > API_JSON_BYTES {
            return Ok(None);
        }
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// The listing of one folder at `revision` (a branch, or the commit
    /// once known), asked once per load.
    async fn tree(&self, dir: &str, revision: &str) -> Result<Option<Vec<TreeEntry>>, ApiError> {
        let key = (revision.to_string(), dir.to_string());
        if let Some((_, t)) = self.trees.borrow().iter().find(|(k, _)| *k == key) {
            return Ok(t.clone());
        }
        let url = tree_url(&self.hub, &self.name, revision, dir);
        let listing = self.api_json(&url, "the file list").await?.map(|v| parse_tree(&v));
        self.trees.borrow_mut().push((key, listing.clone()));
        Ok(listing)
    }

    /// What the hub's listing says `file` must be (size and hash), if it has one.
    pub async fn expected(&self, file: &str) -> Option<TreeEntry> {
        let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let at = self.commit().unwrap_or_else(|| self.revision.clone());
        self.tree(dir, &at).await.ok().flatten()?.into_iter().find(|e| e.path == file)
    }

    pub fn record_download(&self, url: &str, seal: Seal) {
        self.downloaded.borrow_mut().push((url.to_string(), seal));
    }

    pub fn record_use(&self, file: &str) {
        let mut used = self.used.borrow_mut();
        if !used.iter().any(|f| f == file) {
            used.push(file.to_string());
        }
    }

    /// Every file of the pinned model is in the cache, sealed: a load makes
    /// no request.
    pub async fn all_cached(&self) -> bool {
        let Some(pin) = &self.pinned else { return false };
        for file in &pin.files {
            if cache::seal_of(&self.url(file)).await.is_none() {
                return false;
            }
        }
        !pin.files.is_empty()
    }

    /// The bytes of the files a model needs, from the listing at the
    /// revision: (all of them, its weights). `Ok(None)`: no listing here.
    /// `Err`: the hub says the repo is missing or needs a login, or does not
    /// answer (then the download could not start either).
    pub async fn download_size(&self, gguf: Option<&str>) -> Result<Option<(u64, u64)>, String> {
        let dir = gguf.and_then(|g| g.rsplit_once('/')).map(|(d, _)| d).unwrap_or("");
        let Some(listing) = self.tree(dir, &self.revision).await.map_err(ApiError::words)? else { return Ok(None) };
        let is_weights = |path: &str| match gguf {
            Some(g) => path == g,
            None => !path.contains('/') && path.ends_with(".safetensors"),
        };
        let wanted = |path: &str| {
            is_weights(path)
                || (gguf.is_none()
                    && matches!(path, "config.json" | "tokenizer.json" | "tokenizer_config.json" | "generation_config.json" | "model.safetensors.index.json"))
        };
        let sum = |f: &dyn Fn(&str) -> bool| listing.iter().filter(|e| f(&e.path)).map(|e| e.size).sum::<u64>();
        let (all, weights) = (sum(&wanted), sum(&is_weights));
        Ok((all > 0).then_some((all, weights)))
    }

    /// The model loaded: seal its downloads, pin the revision to the
    /// commit, and drop the files of a commit it replaced.
    pub async fn finish(&self) {
        for (url, seal) in self.downloaded.take() {
            cache::seal(&url, &seal).await;
        }
        if self.mode != CacheMode::Use || is_commit(&self.revision) {
            return;
        }
        let commit = self.commit();
        let old = self.pinned.as_ref().and_then(|p| p.commit.clone()).or_else(|| self.replaced.clone());
        if let (Some(old), Some(new)) = (&old, &commit) {
            if old != new {
                let _ = cache::delete_prefix(&file_url(&self.hub, &self.name, old, "")).await;
            }
        }
        let checked_ms = self.pinned.as_ref().filter(|p| p.commit == commit).map_or_else(js_sys::Date::now, |p| p.checked_ms);
        self.write_pin(&Pin { commit, files: self.used.borrow().clone(), checked_ms }).await;
    }

    /// For a model read from its pin: at most hourly, when online, one
    /// request for the revision's newest commit; the page hears when it
    /// has moved on (and offers to update).
    pub async fn check_newer(&self, slot: Slot) {
        let Some(pin) = self.pinned.as_ref().filter(|p| p.commit.is_some() && p.commit == self.commit()) else { return };
        if js_sys::Date::now() - pin.checked_ms < CHECK_EVERY_MS || !online() {
            return;
        }
        let Ok(Some(newest)) = self.current_commit("the newest commit").await else { return };
        self.write_pin(&Pin { checked_ms: js_sys::Date::now(), ..pin.clone() }).await;
        if Some(&newest) != pin.commit.as_ref() {
            post(&FromWorker::NewerCommit { slot, revision: self.revision.clone(), commit: newest });
        }
    }
}

/// Why an API request gave nothing.
enum ApiError {
    /// The hub said the repo is missing, gated or private.
    Refused(String),
    /// No answer at all: down, offline, or no CORS.
    Unreachable(String),
}

impl ApiError {
    fn words(self) -> String {
        match self {
            ApiError::Refused(w) | ApiError::Unreachable(w) => w,
        }
    }
}

fn online() -> bool {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or_default();
    js_sys::Reflect::get(&navigator, &"onLine".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true)
}

/// A hub's refusal of `file` in words (status, `X-Error-Code`, `Retry-After`).
pub fn refusal_words(repo: &Repo, r: &Response, file: &str, url: &str) -> String {
    let header = |h: &str| r.headers().get(h).ok().flatten();
    let code = header("x-error-code");
    let retry_after = retry_after_s(r);
    hub_refusal(&Refusal { status: r.status(), error_code: code.as_deref(), retry_after, file, repo: &repo.name, revision: &repo.revision, url })
}

/// `Retry-After` in seconds (the Hub sends seconds).
pub fn retry_after_s(r: &Response) -> Option<u64> {
    r.headers().get("retry-after").ok().flatten()?.trim().parse().ok()
}
