//! Model addresses on a Hugging Face-style hub, for the worker's fetches and
//! the page's words: a model spec (`owner/name` or `owner/name/file.gguf`),
//! the links that are allowed (http(s) hubs only, no dot segments, every path
//! segment percent-encoded), the `resolve`, tree and revision URLs, and the
//! tree listing parsed. Re-exported by [`crate::protocol`].

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
}
