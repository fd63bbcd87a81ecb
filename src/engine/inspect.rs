//! What a model takes before it is downloaded (the page's model picker):
//! its weight count from its shape (a checkpoint's `config.json`, or a GGUF
//! file's header read from the file's first bytes), so the memory it needs
//! at any precision follows from the same arithmetic the load's size check
//! uses (`Precision::bytes_per_weight`).

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use super::config::{config_from_gguf, config_from_json};
use super::error::{EngineError, Result};
use super::weights::{gguf_bytes_per_weight, read_gguf_header, Precision};

/// A model's size, from its shape and its files' sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub weights: u64,
    /// The bytes a weight takes in the files (2 for bf16, ~0.6 for Q4_1).
    pub stored_bytes_per_weight: f64,
    pub context_length: usize,
}

impl ModelShape {
    /// The bytes its weights take in memory at `precision`.
    pub fn memory(&self, precision: Precision) -> f64 {
        self.weights as f64 * precision.bytes_per_weight(self.stored_bytes_per_weight)
    }
}

/// A checkpoint: its `config.json`, and its safetensors files' total size.
pub fn checkpoint_shape(config_json: &[u8], safetensors_bytes: u64) -> Result<ModelShape> {
    let config = config_from_json(config_json)?;
    let weights = config.weight_count().filter(|&w| w > 0).ok_or_else(|| too_big("config.json"))?;
    Ok(ModelShape { weights, stored_bytes_per_weight: safetensors_bytes as f64 / weights as f64, context_length: config.context_length })
}

/// A GGUF file of `file_size` bytes, from its first bytes (`prefix`); an
/// error when its header does not end within them.
pub fn gguf_shape(prefix: &[u8], file_size: u64) -> Result<ModelShape> {
    let mut reader = Prefix { bytes: prefix, pos: 0, size: file_size };
    let content = read_gguf_header(&mut reader, "the GGUF file")?;
    let config = config_from_gguf(&content)?;
    let weights = config.weight_count().filter(|&w| w > 0).ok_or_else(|| too_big("the GGUF file"))?;
    Ok(ModelShape { weights, stored_bytes_per_weight: gguf_bytes_per_weight(&content), context_length: config.context_length })
}

fn too_big(file: &str) -> EngineError {
    EngineError::BadConfig { file: file.into(), detail: "its dimensions give no sensible number of weights".into() }
}

/// The first bytes of a longer file: seeks see the whole file's size (the
/// header's checks compare offsets with it), reads end where the bytes do.
struct Prefix<'a> {
    bytes: &'a [u8],
    pos: u64,
    size: u64,
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = (self.pos as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the header goes on past the bytes read for it"));
        }
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Prefix<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}
