//! The page <-> worker boundary: the only messages that cross it, one enum
//! each way, named fields, sent as JSON strings through `postMessage`. This is
//! the one file of the page/worker side that derives serde. It re-uses the
//! engine's plain data types (settings, timings, candidates), never its code,
//! so the page's wasm does not carry candle.

use serde::{Deserialize, Serialize};

pub use crate::engine::inspect::ModelShape;
pub use crate::engine::{Candidate, Conversation, Message, Mode, Precision, Prompt, SamplingSettings, StopReason, Timings, TokenScore};

/// Which of the two loaded models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Foundation,
    Instruct,
}

impl Slot {
    /// Its place in per-slot arrays: foundation 0, instruct 1.
    pub fn index(self) -> usize {
        match self {
            Slot::Foundation => 0,
            Slot::Instruct => 1,
        }
    }
}

/// Which model a tab's answers come from (Foundation runs on the foundation
/// slot, Instruct and Chat on the instruct slot).
impl Mode {
    pub fn slot(self) -> Slot {
        match self {
            Mode::Foundation => Slot::Foundation,
            Mode::Instruct | Mode::Chat => Slot::Instruct,
        }
    }
}

/// Where a model comes from: `{hub}/{repo}/resolve/{revision}/{file}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSource {
    /// Base URL of a Hugging Face-style hub, e.g. `https://huggingface.co`.
    pub hub: String,
    /// `owner/name` (a checkpoint repo) or `owner/name/file.gguf` (one GGUF file).
    pub spec: String,
    /// A branch, tag or commit (`main` by default).
    #[serde(default = "main_revision")]
    pub revision: String,
}

fn main_revision() -> String {
    "main".into()
}

/// What the worker does with the browser's cache of model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Read from it, store downloads in it.
    #[default]
    Use,
    /// Neither read nor store (`?cache=off`).
    Off,
    /// Tests: every store fails as if the quota were full (`?cache=full`).
    SimulateFull,
}

/// Where a file's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Network,
    Cache,
    /// A file the user picked or dropped (read in the worker, never uploaded).
    Local,
}

/// One file in the browser's model cache (the storage panel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedFile {
    pub url: String,
    /// `{hub}/{owner}/{name}`: what a per-model Delete removes.
    pub model: String,
    pub file: String,
    pub bytes: u64,
}

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// (Re)load both models; drops whatever was loaded and any queued jobs.
    /// `None` means "no model from a hub for this slot": its tab says so, or a
    /// `LoadLocal` for that slot follows.
    /// `ask_first`: a model that is not wholly cached is not downloaded;
    /// the worker says how much it would download (`DownloadNeeded`) and the
    /// page sends `Load` again on the user's click. `fresh`: forget which
    /// commit each revision was pinned to (the user asked for the newest).
    Load {
        foundation: Option<ModelSource>,
        instruct: Option<ModelSource>,
        precision: Precision,
        cache: CacheMode,
        #[serde(default)]
        ask_first: bool,
        #[serde(default)]
        fresh: bool,
    },
    /// Load one slot from files the user picked. The message is posted as
    /// `[json, [File, ...]]`: the File objects travel by structured clone (no
    /// bytes copied into the page), the worker reads them.
    LoadLocal { slot: Slot, precision: Precision },
    /// Send `FromWorker::Storage`: what the model cache holds.
    ListCache,
    /// Remove every cached file whose URL starts with `{model}/resolve/`.
    DeleteCached { model: String },
    /// Generate one answer. Jobs run one after the other, in order.
    Ask(Ask),
    /// Stop the running job and drop every queued one.
    Stop,
    /// The model picker: what `source` would download and take in memory,
    /// without loading it (`FromWorker::Inspected`).
    Inspect { source: ModelSource },
}

/// What a model would take, before it is chosen (`ToWorker::Inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The bytes its files take, from the hub's listing (None: no listing).
    pub download_bytes: Option<u64>,
    /// Every file it needs is in this browser's cache already.
    pub cached: bool,
    /// Its weight count and stored size (None: `shape_problem` says why).
    pub shape: Option<ModelShape>,
    pub shape_problem: Option<String>,
}

/// One answer to write: `job` names it in every reply about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    pub job: u64,
    pub prompt: Prompt,
    pub settings: SamplingSettings,
    /// The model to ask, when not the one the prompt's mode uses (the
    /// Compare tab: instruct weights on the raw question, foundation weights
    /// on the templated prompt).
    #[serde(default)]
    pub slot: Option<Slot>,
    /// Rate these answer ids under the prompt instead of generating
    /// (`LanguageModel::score`; the reply is `FromWorker::Scored`).
    #[serde(default)]
    pub score: Option<Vec<u32>>,
    /// A branch: the answer starts with these ids (the answer's tokens
    /// before a step, then the candidate chosen there) and goes on from
    /// them (`LanguageModel::start_branch`; `FromWorker::Forced` gives
    /// their texts). Empty: an answer from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub force: Vec<u32>,
}

impl Ask {
    /// An answer to `prompt` by the model its mode uses, from the start.
    pub fn new(job: u64, prompt: Prompt, settings: SamplingSettings) -> Self {
        Self { job, prompt, settings, slot: None, score: None, force: vec![] }
    }

    pub fn slot(&self) -> Slot {
        self.slot.unwrap_or_else(|| self.prompt.mode().slot())
    }
}

/// One token of a prompt, for the Prompt tab's token view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptToken {
    pub id: u32,
    pub piece: String,
    pub special: bool,
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and listening.
    Ready,
    /// Download progress of one file (`total: None` when the size is unknown).
    Progress { slot: Slot, file: String, done: u64, total: Option<u64>, origin: Origin },
    /// Something went wrong that does not stop the model (e.g. the cache is full).
    Warning { slot: Slot, message: String },
    /// The model cache: its files, and `navigator.storage.estimate()`.
    Storage { files: Vec<CachedFile>, usage: Option<f64>, quota: Option<f64>, message: Option<String> },
    /// Files fetched; the weights are being prepared.
    Preparing { slot: Slot },
    /// A model that is not wholly cached, not downloaded yet (`Load` with
    /// `ask_first`): `bytes`, what it would download (`None`: the hub has no
    /// file listing to tell).
    DownloadNeeded { slot: Slot, bytes: Option<u64> },
    /// A model is ready to answer. `commit`: the hub commit its files came
    /// from (`None`: a mirror or host that names none).
    Loaded {
        slot: Slot,
        spec: String,
        weight_bytes: u64,
        load_ms: f64,
        #[serde(default)]
        commit: Option<String>,
        /// The most tokens it reads (prompt and answer together).
        #[serde(default)]
        context_tokens: u64,
    },
    /// The revision a cached model was pinned to has moved on to `commit`
    /// (checked at most hourly, one request, when online).
    NewerCommit { slot: Slot, revision: String, commit: String },
    /// A model could not be fetched or loaded: `message` says which file and why.
    LoadFailed { slot: Slot, message: String },
    /// A job started: the exact prompt string and its tokens.
    Started { job: u64, prompt: String, tokens: Vec<PromptToken> },
    /// A branch's forced tokens, as text (one each), before its first `Token`.
    Forced { job: u64, texts: Vec<String> },
    /// One generated token (`text` may be empty mid-character); `end_prob`:
    /// P(end of text) at this step (`Generation::end_probs`).
    Token {
        job: u64,
        id: u32,
        text: String,
        candidates: Vec<Candidate>,
        #[serde(default)]
        end_prob: f32,
    },
    /// A job ended. `stop_reason: None` means it was stopped by the user.
    /// `reply` is the decoded answer without special tokens (what the chat
    /// history keeps, as transformers' pipeline does). `end_candidates`: when
    /// the model picked end-of-text and candidates were asked for, what it
    /// weighed at that step (why an answer ended at once); empty otherwise.
    /// `end_prob`: P(end of text) at the step that picked end-of-text.
    Done {
        job: u64,
        stop_reason: Option<StopReason>,
        timings: Timings,
        token_ids: Vec<u32>,
        reply: String,
        end_candidates: Vec<Candidate>,
        #[serde(default)]
        end_prob: Option<f32>,
    },
    /// An `Ask` with `score`: each answer token's rank and probability.
    Scored { job: u64, scores: Vec<TokenScore> },
    /// A job failed.
    Failed { job: u64, message: String },
    /// `ToWorker::Inspect`'s answer: the report, or why the hub has none.
    Inspected { source: ModelSource, report: Result<ModelReport, String> },
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message to the worker: {e}"))
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message from the worker: {e}"))
    }
}

/// The files to fetch for a model spec, and the repo they live in.
/// `owner/name/file.gguf` -> one GGUF file; `owner/name` -> a checkpoint.
pub fn parse_spec(spec: &str) -> Result<(String, Option<String>), String> {
    let spec = spec.trim().trim_matches('/');
    let parts: Vec<&str> = spec.split('/').collect();
    // A link must not reach another repo or path of the hub: no dot segments,
    // no query, fragment, escapes or backslashes smuggled into a name.
    if let Some(bad) = parts.iter().find(|p| bad_segment(p)) {
        return Err(format!("\"{spec}\" is not a model: the part \"{bad}\" is not a plain name"));
    }
    match parts.as_slice() {
        [owner, name] if !owner.is_empty() && !name.is_empty() => Ok((spec.to_string(), None)),
        [owner, name, rest @ ..] if !rest.is_empty() && spec.to_ascii_lowercase().ends_with(".gguf") => {
            Ok((format!("{owner}/{name}"), Some(rest.join("/"))))
        }
        _ => Err(format!(
            "\"{spec}\" is not a model: use a repo such as HuggingFaceTB/SmolLM2-135M-Instruct, or owner/name/file.gguf for one GGUF file"
        )),
    }
}

fn bad_segment(part: &str) -> bool {
    part.is_empty() || part == "." || part == ".." || part.contains(['?', '#', '%', '\\']) || part.chars().any(char::is_control)
}

/// A hub the page may fetch from: an absolute `http(s):` URL (relative mirrors
/// are resolved against the page before they get here), never `data:`,
/// `blob:` or `file:`; and a revision without dot segments, query or fragment.
pub fn check_link(hub: &str, revision: &str) -> Result<(), String> {
    let lower = hub.trim().to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        let scheme = lower.split(':').next().unwrap_or_default();
        return Err(format!("the hub \"{scheme}:…\" is not a web address: models come only from http(s) hubs or from files picked on this computer"));
    }
    let revision = revision.trim();
    if !revision.is_empty() && revision.split('/').any(bad_segment) {
        return Err(format!("the revision \"{revision}\" is not a branch, tag or commit name"));
    }
    Ok(())
}

/// Each byte outside RFC 3986's unreserved set as %XX.
fn encode_segment(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` with each `/`-separated segment encoded.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// `{hub}/{repo}/resolve/{revision}/{file}`, each path segment encoded (the
/// revision as one segment: `refs/pr/1` -> `refs%2Fpr%2F1`, as the Hub takes it).
pub fn file_url(hub: &str, repo: &str, revision: &str, file: &str) -> String {
    let revision = if revision.trim().is_empty() { "main" } else { revision.trim() };
    format!("{}/{}/resolve/{}/{}", hub.trim_end_matches('/'), encode_path(repo), encode_segment(revision), encode_path(file))
}

/// `(model, file)` of a `{hub}/{owner}/{name}/resolve/{revision}/{file}` URL,
/// where model is `{hub}/{owner}/{name}`.
pub fn split_file_url(url: &str) -> Option<(String, String)> {
    let i = url.find("/resolve/")?;
    let rest = &url[i + "/resolve/".len()..];
    let file = rest.split_once('/')?.1;
    Some((url[..i].to_string(), file.to_string()))
}

/// `{hub}/api/models/{repo}/tree/{revision}[/{dir}]`: the Hub's file listing,
/// which states each LFS file's sha256 (`lfs.oid`). A browser cannot read the
/// `X-Linked-Etag` of `resolve`'s redirect, so this is where the page learns it.
pub fn tree_url(hub: &str, repo: &str, revision: &str, dir: &str) -> String {
    let revision = if revision.trim().is_empty() { "main" } else { revision.trim() };
    let dir = if dir.is_empty() { String::new() } else { format!("/{}", encode_path(dir)) };
    format!("{}/api/models/{}/tree/{}{}", hub.trim_end_matches('/'), encode_path(repo), encode_segment(revision), dir)
}

/// `{hub}/api/models/{repo}/revision/{revision}`: the commit a revision
/// names now (`sha` in its JSON).
pub fn revision_url(hub: &str, repo: &str, revision: &str) -> String {
    let revision = if revision.trim().is_empty() { "main" } else { revision.trim() };
    format!("{}/api/models/{}/revision/{}", hub.trim_end_matches('/'), encode_path(repo), encode_segment(revision))
}

/// A 40-hex git commit id (a revision that cannot move).
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a hub's tree listing says of one file: its size and the hash its
/// bytes must have: the sha256 for an LFS file (`lfs.oid`), else the git
/// blob SHA-1 (`oid`, sha1 of `blob {size}\0` + the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub git_sha1: Option<String>,
}

fn hex_of_len(v: Option<&serde_json::Value>, len: usize) -> Option<String> {
    let s = v?.as_str()?.to_ascii_lowercase();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// The files of a tree listing (not a list: none). An all-zero `oid` (a
/// server that does not know it) is no hash.
pub fn parse_tree(listing: &serde_json::Value) -> Vec<TreeEntry> {
    let Some(items) = listing.as_array() else { return vec![] };
    items
        .iter()
        .filter(|it| it.get("type").and_then(|t| t.as_str()).unwrap_or("file") == "file")
        .filter_map(|it| {
            let lfs = it.get("lfs");
            Some(TreeEntry {
                path: it.get("path")?.as_str()?.to_string(),
                size: it.get("size")?.as_u64()?,
                sha256: hex_of_len(lfs.and_then(|l| l.get("oid")), 64),
                git_sha1: if lfs.is_some() { None } else { hex_of_len(it.get("oid"), 40).filter(|o| o.bytes().any(|b| b != b'0')) },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("a/b").unwrap(), ("a/b".into(), None));
        assert_eq!(parse_spec("a/b/c.gguf").unwrap(), ("a/b".into(), Some("c.gguf".into())));
        assert!(parse_spec("a").is_err());
        assert_eq!(file_url("http://x/hub/", "a/b", "", "c.gguf"), "http://x/hub/a/b/resolve/main/c.gguf");
        assert_eq!(file_url("http://x/hub", "a/b", "v1", "c.gguf"), "http://x/hub/a/b/resolve/v1/c.gguf");
        assert_eq!(split_file_url("http://x/hub/a/b/resolve/v1/d/c.gguf").unwrap(), ("http://x/hub/a/b".into(), "d/c.gguf".into()));
    }

    #[test]
    fn links_stay_on_the_hub_and_in_the_repo() {
        for bad in ["a/../b/c.gguf", "a/b/../../x/y.gguf", "./b", "a/b?x=1", "a/b#f", "a/b/%2e%2e/c.gguf", "a\\b/c"] {
            assert!(parse_spec(bad).unwrap_err().contains("not"), "{bad}");
        }
        for hub in ["data:application/octet-stream;base64,R0dVRg==", "blob:http://x/1", "file:///etc", "javascript:alert(1)", "ftp://x"] {
            assert!(check_link(hub, "main").unwrap_err().contains("not a web address"), "{hub}");
        }
        assert!(check_link("https://huggingface.co", "main").is_ok());
        assert!(check_link("HTTP://127.0.0.1:8080/hub", "").is_ok());
        for rev in ["../../other/repo", "main?x", "a#b", "refs/../x"] {
            assert!(check_link("https://h", rev).unwrap_err().contains("revision"), "{rev}");
        }
        assert_eq!(file_url("https://h", "a/b", "refs/pr/1", "dir/my file.gguf"), "https://h/a/b/resolve/refs%2Fpr%2F1/dir/my%20file.gguf");
    }

    #[test]
    fn tree() {
        assert_eq!(tree_url("http://h/", "a/b", "refs/pr/1", ""), "http://h/api/models/a/b/tree/refs%2Fpr%2F1");
        assert_eq!(tree_url("http://h", "a/b", "", "sub"), "http://h/api/models/a/b/tree/main/sub");
        let sha = "ab".repeat(32);
        let sha1 = "cd".repeat(20);
        let json = format!(
            r#"[{{"type":"file","oid":"{sha1}","size":3,"path":"config.json"}},{{"type":"file","oid":"{zero}","size":4,"path":"z.json"}},
               {{"type":"directory","oid":"{sha1}","size":0,"path":"d"}},{{"type":"file","oid":"{sha1}","size":9,"path":"m.gguf","lfs":{{"oid":"{sha}","size":9}}}}]"#,
            zero = "0".repeat(40)
        );
        let entry = |path: &str, size, sha256: Option<&String>, git_sha1: Option<&str>| TreeEntry { path: path.into(), size, sha256: sha256.cloned(), git_sha1: git_sha1.map(Into::into) };
        assert_eq!(
            parse_tree(&serde_json::from_str(&json).unwrap()),
            vec![entry("config.json", 3, None, Some(&sha1)), entry("z.json", 4, None, None), entry("m.gguf", 9, Some(&sha), None)]
        );
        assert_eq!(revision_url("http://h/", "a/b", ""), "http://h/api/models/a/b/revision/main");
        assert!(is_commit(&sha1) && !is_commit("main"));
        assert!(parse_tree(&serde_json::json!({"error": "not a list"})).is_empty());
    }

    #[test]
    fn round_trip() {
        let m = ToWorker::Stop;
        assert_eq!(ToWorker::from_json(&m.to_json()).unwrap(), m);
        let mut chat = Conversation::new(Some("Be brief.".into()));
        chat.user("Hi");
        for prompt in [Prompt::Raw("Hi".into()), Prompt::Instruct("Hi".into()), Prompt::Chat(chat)] {
            let m = ToWorker::Ask(Ask { slot: Some(Slot::Foundation), force: vec![1, 2], ..Ask::new(7, prompt, SamplingSettings::greedy(3)) });
            assert_eq!(ToWorker::from_json(&m.to_json()).unwrap(), m);
        }
        let m = FromWorker::Progress { slot: Slot::Instruct, file: "x".into(), done: 1, total: Some(2), origin: Origin::Cache };
        assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
        let why = vec![Candidate { id: 2, text: "<|im_end|>".into(), logit: 20.5, prob: 0.67 }];
        let m = FromWorker::Done {
            job: 3,
            stop_reason: Some(StopReason::EndOfText),
            timings: Timings::default(),
            token_ids: vec![2],
            reply: String::new(),
            end_candidates: why,
            end_prob: Some(0.67),
        };
        assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
    }
}
