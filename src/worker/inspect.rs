//! The model picker's question: what would this model download, and does it
//! fit in a tab? From the hub's listing (sizes) and the model's shape: a
//! checkpoint's `config.json`, or the header at the start of a GGUF file
//! (its first bytes, by a Range request). Nothing is cached or loaded.

use super::cache::js_error;
use super::fetch::{first_bytes, request, request_prefix};
use super::hub::Repo;
use super::post;
use crate::engine::inspect::{checkpoint_shape, gguf_shape};
use crate::protocol::{check_link, parse_spec, CacheMode, FromWorker, ModelReport, ModelShape, ModelSource};

/// The most bytes read of a GGUF file for its header (SmolLM2's header,
/// with its 49 152-token vocabulary and merges, is about 1.5 MB).
const GGUF_HEADER_BYTES: u64 = 8 << 20;
/// The most bytes read of a `config.json`.
const CONFIG_BYTES: u64 = 1 << 20;

pub(super) async fn inspect(source: ModelSource) {
    let report = report(&source).await;
    post(&FromWorker::Inspected { source, report });
}

async fn report(source: &ModelSource) -> Result<ModelReport, String> {
    check_link(&source.hub, &source.revision)?;
    let (name, gguf) = parse_spec(&source.spec)?;
    let repo = Repo::open(source, &name, CacheMode::Use, false).await;
    let cached = repo.all_cached().await;
    let sizes = repo.download_size(gguf.as_deref()).await?;
    let shape = match &gguf {
        Some(file) => gguf_report(&repo, file, sizes.map(|(_, w)| w)).await,
        None => match sizes {
            Some((_, weights)) => checkpoint_report(&repo, weights).await,
            None => Err("the hub lists no files here, so the weights' size is not known before the download".into()),
        },
    };
    let (shape, shape_problem) = match shape {
        Ok(s) => (Some(s), None),
        Err(why) => (None, Some(why)),
    };
    Ok(ModelReport { download_bytes: sizes.map(|(all, _)| all), cached, shape, shape_problem })
}

async fn checkpoint_report(repo: &Repo, weights_bytes: u64) -> Result<ModelShape, String> {
    let url = repo.url("config.json");
    let r = request(&url, 0).await.map_err(|e| format!("config.json could not be read ({})", js_error(&e)))?;
    if !r.ok() {
        return Err(format!("config.json could not be read (HTTP {})", r.status()));
    }
    let bytes = first_bytes(&r, CONFIG_BYTES).await?;
    checkpoint_shape(&bytes, weights_bytes).map_err(|e| e.to_string())
}

async fn gguf_report(repo: &Repo, file: &str, listed_size: Option<u64>) -> Result<ModelShape, String> {
    let url = repo.url(file);
    let r = request_prefix(&url, GGUF_HEADER_BYTES).await.map_err(|e| format!("{file} could not be read ({})", js_error(&e)))?;
    if !r.ok() {
        return Err(format!("{file} could not be read (HTTP {})", r.status()));
    }
    // "bytes 0-8388607/270590432": the whole file's size, when the listing had none.
    let from_range = r.headers().get("content-range").ok().flatten().and_then(|v| v.rsplit('/').next()?.parse::<u64>().ok());
    let from_length = (r.status() == 200).then(|| r.headers().get("content-length").ok().flatten()?.parse::<u64>().ok()).flatten();
    let size = listed_size.or(from_range).or(from_length).ok_or_else(|| format!("the size of {file} is not known"))?;
    let bytes = first_bytes(&r, GGUF_HEADER_BYTES).await?;
    gguf_shape(&bytes, size).map_err(|e| e.to_string())
}
