//! Where a model file's bytes live in the worker: in wasm memory (small
//! files), or in a `Blob` outside it (weights: the engine reads them through
//! [`BlobReader`], so a file never sits in wasm memory next to the weights
//! made from it); the [`Store`] a download fills; the size caps.

use sha2::{Digest, Sha256};

use super::cache::js_error;
use crate::words::bytes;

/// A file's contents: in wasm memory (what the engine takes as bytes), or a
/// `Blob` outside it (a GGUF: the engine reads it through [`BlobReader`], so
/// the file never sits in wasm memory next to the weights made from it).
pub enum Data {
    Bytes(Vec<u8>),
    Blob(web_sys::Blob),
}

impl Data {
    /// A `Read + Seek` over the data. For a Blob: 64 KiB of buffer, enough to
    /// batch a header's many small reads; the engine seeks before every
    /// tensor, which empties the buffer, so a large one would re-read
    /// megabytes per small tensor (8 MiB here made loading 5x slower), and
    /// reads bigger than it go straight to the Blob. (A `Box`, which passes
    /// every `Seek` method through: a wrapper that left `stream_position` to
    /// its default, `seek(Current(0))`, emptied the buffer before each GGUF
    /// value candle reads and made loading 60x slower.)
    pub fn into_reader(self) -> Result<Box<dyn crate::engine::ReadSeek>, String> {
        Ok(match self {
            Data::Bytes(b) => Box::new(std::io::Cursor::new(b)),
            Data::Blob(b) => Box::new(std::io::BufReader::with_capacity(64 << 10, BlobReader::new(b)?)),
        })
    }

    pub fn into_bytes(self) -> Result<Vec<u8>, String> {
        match self {
            Data::Bytes(b) => Ok(b),
            Data::Blob(b) => {
                let reader = file_reader()?;
                let buf = reader.read_as_array_buffer(&b).map_err(|e| js_error(&e))?;
                Ok(js_sys::Uint8Array::new(&buf).to_vec())
            }
        }
    }
}

/// The most a model's small files (config, tokenizer, template) may take: the
/// largest real tokenizer.json is a few tens of MB. A larger one is refused
/// before it is read into wasm memory (where 2^31 bytes would abort).
pub const MAX_SMALL_FILE: u64 = 64 << 20;

/// The most a weights file may take: what a tab can hold (the engine's budget).
const MAX_WEIGHTS_FILE: u64 = crate::engine::file_checks::WEIGHT_BUDGET_BYTES;

/// Words for a file over its cap, or None.
pub fn too_big(file: &str, size: u64, blob: bool) -> Option<String> {
    let cap = if blob { MAX_WEIGHTS_FILE } else { MAX_SMALL_FILE };
    (size > cap).then(|| match blob {
        true => format!("{file} is {}, more than the {} a browser tab can hold: use a smaller model or a smaller quantization", bytes(size), bytes(cap)),
        false => format!("{file} is {}, more than the {} a model's configuration or tokenizer file takes: this is not a model file", bytes(size), bytes(cap)),
    })
}

/// Where a download's chunks go while they arrive.
pub enum Store {
    Bytes(Vec<u8>),
    /// The network's own chunks, kept in JS (no copy); `scratch` holds one
    /// chunk in wasm memory for the hash.
    Chunks { chunks: js_sys::Array, len: u64, scratch: Vec<u8> },
}

impl Store {
    pub fn len(&self) -> u64 {
        match self {
            Store::Bytes(b) => b.len() as u64,
            Store::Chunks { len, .. } => *len,
        }
    }
    /// Keeps `chunk`; returns its bytes (for the hash). A body that grows past
    /// the store's cap (a server that never ends) is refused.
    pub fn push(&mut self, chunk: &js_sys::Uint8Array) -> Result<&[u8], String> {
        let n = chunk.length() as usize;
        let blob = matches!(self, Store::Chunks { .. });
        if let Some(words) = too_big("the file", self.len() + n as u64, blob) {
            return Err(words);
        }
        Ok(match self {
            Store::Bytes(b) => {
                let start = b.len();
                b.resize(start + n, 0);
                chunk.copy_to(&mut b[start..]);
                &b[start..]
            }
            Store::Chunks { chunks, len, scratch } => {
                chunks.push(chunk);
                *len += n as u64;
                scratch.resize(n, 0);
                chunk.copy_to(scratch);
                scratch
            }
        })
    }

    /// A store for a file of `total` bytes (when stated): bytes in wasm memory
    /// for small files, the network's chunks for weights.
    pub fn new(blob: bool, total: Option<u64>) -> Self {
        match blob {
            true => Store::Chunks { chunks: js_sys::Array::new(), len: 0, scratch: vec![] },
            false => Store::Bytes(Vec::with_capacity(total.unwrap_or(0).min(MAX_SMALL_FILE) as usize)),
        }
    }
}

/// `Read + Seek` over a `Blob` (a cached file on disk, a picked file, or
/// downloaded chunks), one synchronous slice read at a time (`FileReaderSync`,
/// workers only). Wrap it in a `BufReader`: GGUF headers are many small reads.
pub struct BlobReader {
    blob: web_sys::Blob,
    reader: web_sys::FileReaderSync,
    pos: u64,
    size: u64,
}

impl BlobReader {
    pub fn new(blob: web_sys::Blob) -> Result<Self, String> {
        let reader = file_reader()?;
        let size = blob.size() as u64;
        Ok(Self { blob, reader, pos: 0, size })
    }
}

impl std::io::Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let end = (self.pos + buf.len() as u64).min(self.size);
        let io = |e: wasm_bindgen::JsValue| std::io::Error::other(js_error(&e));
        let slice = self.blob.slice_with_f64_and_f64(self.pos as f64, end as f64).map_err(io)?;
        let ab: wasm_bindgen::JsValue = self.reader.read_as_array_buffer(&slice).map_err(io)?.into();
        let data = js_sys::Uint8Array::new(&ab);
        let n = data.length() as usize;
        data.copy_to(&mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for BlobReader {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            std::io::SeekFrom::Start(p) => p as i128,
            std::io::SeekFrom::End(d) => self.size as i128 + d as i128,
            std::io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the file"));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}

/// A `FileReaderSync`: how the engine reads a Blob slice by slice without
/// copying it whole into wasm memory. Workers of every current browser have it.
pub fn file_reader() -> Result<web_sys::FileReaderSync, String> {
    web_sys::FileReaderSync::new().map_err(|e| {
        format!(
            "this browser's workers cannot read files piece by piece (no FileReaderSync: {}), which loading a model needs. \
             Use a current Chrome, Edge or Firefox, or Safari 16.4 or later.",
            js_error(&e)
        )
    })
}

/// The sha256 of a Blob, read 8 MiB at a time (`FileReaderSync`, workers only).
pub fn sha256_of_blob(blob: &web_sys::Blob, on_progress: impl Fn(u64)) -> Result<String, String> {
    const STEP: u64 = 8 << 20;
    let reader = file_reader()?;
    let (size, mut hasher, mut buf) = (blob.size() as u64, Sha256::new(), vec![]);
    let mut at = 0;
    while at < size {
        let end = (at + STEP).min(size);
        let slice = blob.slice_with_f64_and_f64(at as f64, end as f64).map_err(|e| js_error(&e))?;
        let buffer = reader.read_as_array_buffer(&slice).map_err(|e| format!("cannot be read ({})", js_error(&e)))?;
        let chunk = js_sys::Uint8Array::new(&buffer);
        buf.resize(chunk.length() as usize, 0);
        chunk.copy_to(&mut buf);
        hasher.update(&buf);
        at = end;
        on_progress(at);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
