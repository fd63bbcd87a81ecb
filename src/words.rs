//! Numbers and a hub's refusals in words, shared by the page and the worker
//! (whose messages name file sizes and say why a download failed); plain
//! functions, so they are tested natively.

/// 1234567 -> "1.2 MB".
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} kB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// What a hub's HTTP answer tells about one file, when it is not the file.
pub struct Refusal<'a> {
    pub status: u16,
    /// `X-Error-Code` (`RepoNotFound`, `EntryNotFound`, `RevisionNotFound`, `GatedRepo`).
    pub error_code: Option<&'a str>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    pub file: &'a str,
    pub repo: &'a str,
    pub revision: &'a str,
    pub url: &'a str,
}

/// Why a hub did not give a file, and what to do, in words.
pub fn hub_refusal(r: &Refusal) -> String {
    let Refusal { status, error_code, retry_after, file, repo, revision, url } = *r;
    let instead = "or download the files elsewhere and use \"Use files from this computer\", or a mirror (?hub=./models)";
    match (status, error_code) {
        (404, Some("RepoNotFound")) => format!(
            "There is no model repo {repo} on this hub (HTTP 404, repository not found), or it is private. Check the model name \
             (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)."
        ),
        (404, Some("RevisionNotFound")) => format!("The repo {repo} has no revision \"{revision}\" (HTTP 404). Check ?revision= (a branch, tag or commit)."),
        (404, Some("EntryNotFound")) => format!(
            "The repo {repo} exists but has no file {file} at revision {revision} (HTTP 404, entry not found): is it a model of a kind this page reads \
             (a checkpoint with config.json and safetensors, or a .gguf file)? Check the file name."
        ),
        (404, _) => format!(
            "{file} was not found at {url} (HTTP 404): the repo or the file name is wrong, or the revision does not have it. \
             Check the model name (a repo such as HuggingFaceTB/SmolLM2-135M-Instruct, or owner/name/file.gguf) and ?revision=."
        ),
        (401 | 403, _) => format!(
            "The repo {repo} needs a login (HTTP {status}: it is gated or private), which this page does not do: accept its terms and download the files \
             on huggingface.co, then use \"Use files from this computer\"; or pick a public model."
        ),
        (429, _) => {
            let when = match retry_after {
                Some(s) if s < 120 => format!("in {s} s"),
                Some(s) => format!("in about {} minutes", s.div_ceil(60)),
                None => "in a few minutes".into(),
            };
            format!(
                "The hub is limiting requests from your address (HTTP 429, too many requests; anonymous visitors get a few thousand file \
                 downloads per 5 minutes). Reload to try again {when}, {instead}."
            )
        }
        (s, _) if s >= 500 => format!("The hub failed to give {file} (HTTP {s}): it may be down for a moment. Reload to try again in a minute, {instead}."),
        (s, _) => format!("Downloading {file} from {url} failed: HTTP {s}. Reload to try again later, {instead}."),
    }
}

/// A request that got no answer at all (a network error, or CORS refused).
pub fn unreachable_words(what: &str, url: &str, error: &str) -> String {
    format!(
        "Could not download {what} from {url}: the server did not answer, or it does not allow this page to read it (CORS) ({error}). \
         Check the hub address and your connection; without a network, pick the model's files with \"Use files from this computer\", \
         or serve a mirror folder next to the page (?hub=./models)."
    )
}

/// Why a downloaded file could not be kept in the browser's cache.
pub fn cache_refusal(file: &str, error: &str) -> String {
    if error.contains("Quota") {
        format!(
            "The browser's storage is full, so {file} was not cached ({error}). The model runs from memory this time and will be downloaded again next visit; free space with Delete in the storage panel."
        )
    } else if error.contains("UnknownError") || error.contains("Unexpected internal error") || error.contains("SecurityError") {
        // Chromium's incognito windows refuse large cache entries this way.
        format!(
            "This window keeps no files (a private window, or storage is switched off: {error}), so {file} will be downloaded again next time. The model runs from memory now."
        )
    } else {
        format!("{file} could not be cached ({error}). The model runs from memory this time and will be downloaded again next visit.")
    }
}

#[cfg(test)]
mod tests {
    use super::{cache_refusal, hub_refusal, Refusal};

    fn refusal(status: u16, error_code: Option<&'static str>, retry_after: Option<u64>) -> String {
        hub_refusal(&Refusal { status, error_code, retry_after, file: "config.json", repo: "a/b", revision: "main", url: "https://h/a/b/resolve/main/config.json" })
    }

    #[test]
    fn hub_answers() {
        assert!(refusal(404, Some("RepoNotFound"), None).contains("no model repo a/b"));
        assert!(refusal(404, Some("EntryNotFound"), None).contains("exists but has no file config.json"));
        assert!(refusal(404, Some("RevisionNotFound"), None).contains("no revision \"main\""));
        assert!(refusal(404, None, None).contains("was not found at https://h/"));
        assert!(refusal(401, None, None).contains("needs a login"));
        assert!(refusal(403, Some("GatedRepo"), None).contains("Use files from this computer"));
        assert!(refusal(429, None, Some(30)).contains("again in 30 s"));
        assert!(refusal(429, None, Some(600)).contains("in about 10 minutes"));
        assert!(refusal(503, None, None).contains("HTTP 503"));
        assert!(cache_refusal("m.gguf", "QuotaExceededError: full").contains("storage is full"));
        assert!(cache_refusal("m.gguf", "UnknownError: Unexpected internal error.").contains("This window keeps no files"));
        assert!(cache_refusal("m.gguf", "TypeError: x").contains("could not be cached"));
    }

    #[test]
    fn sizes() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "2 kB");
        assert_eq!(super::bytes(138 << 20), "138.0 MB");
        assert_eq!(super::bytes(3 << 30), "3.00 GB");
    }
}
