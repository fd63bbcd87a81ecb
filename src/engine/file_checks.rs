//! Checks a model file must pass before anything is allocated for it.
//!
//! A link or a dropped file can be hostile. candle's GGUF reader checks each
//! value against the file, but not: an alignment of 0 (it divides by it),
//! tensors whose sizes overflow or that share bytes (a 2 MiB file that asks
//! for 8 GiB), or a model too big for a browser tab. A panic or an allocation
//! failure kills the worker, so these are checked here first, in words.

use std::io::SeekFrom;

use candle_core::quantized::gguf_file;

use super::error::{EngineError, Result};
use super::config::Config;
use super::weights::{Precision, ReadSeek};

/// Weights a model may take in memory: wasm32 addresses 4 GiB in all, and the
/// KV cache, the tokenizer and the page's own memory need the rest.
pub const WEIGHT_BUDGET_BYTES: u64 = 3 << 30;

/// The longest context the engine keeps a KV cache for, whatever a file says
/// (SmolLM2: 8192): a config's 2^30 must not become a table or a cache.
pub const MAX_CONTEXT: usize = 32_768;

/// The most blocks (layers) a model may declare (SmolLM2-135M has 30).
pub const MAX_LAYERS: usize = 1024;

fn corrupt(file: &str, detail: String) -> EngineError {
    EngineError::Corrupt { file: file.into(), detail }
}

/// Walks a GGUF header's metadata (without keeping it) to check
/// `general.alignment` before candle's reader divides by it.
pub fn check_gguf_alignment(reader: &mut dyn ReadSeek, file: &str) -> Result<()> {
    let size = reader.seek(SeekFrom::End(0)).map_err(|e| corrupt(file, e.to_string()))?;
    reader.seek(SeekFrom::Start(4)).map_err(|e| corrupt(file, e.to_string()))?;
    let mut h = Header { reader, file, size, pos: 4, wide: true };
    h.wide = h.u32()? >= 2; // the version; v1 has 32-bit lengths
    let _tensors = h.len()?;
    let kvs = h.len()?;
    for _ in 0..kvs {
        // Each entry takes at least 13 bytes, so a huge count ends at the file's end.
        let key_len = h.len()?;
        let is_alignment = match key_len {
            17 => h.bytes(17)? == b"general.alignment",
            n => h.skip(n).map(|_| false)?,
        };
        let kind = h.u32()?;
        if !is_alignment {
            h.skip_value(kind, 0)?;
            continue;
        }
        let value = match kind {
            0 | 1 => h.bytes(1)?[0] as u64,                                     // u8, i8
            2 | 3 => u16::from_le_bytes([h.bytes(1)?[0], h.bytes(1)?[0]]) as u64, // u16, i16
            4 | 5 => h.u32()? as u64,                                           // u32, i32
            _ => return Err(corrupt(file, format!("general.alignment has value type {kind}, not an integer"))),
        };
        if value == 0 || !value.is_power_of_two() || value > 1 << 16 {
            return Err(corrupt(file, format!("general.alignment is {value}: it must be a power of two")));
        }
        return Ok(());
    }
    Ok(())
}

/// A GGUF header being walked. Short skips are read, not sought: in the
/// browser the reader is a `BufReader` over a Blob, and a seek empties its
/// buffer (the vocabulary alone is ~100k short strings).
struct Header<'a> {
    reader: &'a mut dyn ReadSeek,
    file: &'a str,
    size: u64,
    pos: u64,
    /// GGUF v2+: lengths are u64 (v1: u32).
    wide: bool,
}

impl Header<'_> {
    fn err(&self, detail: String) -> EngineError {
        corrupt(self.file, detail)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        self.reader.read_exact(buf).map_err(|e| corrupt(self.file, format!("the header is cut short ({e})")))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn len(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        let n = if self.wide { 8 } else { 4 };
        self.fill(&mut b[..n])?;
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.size => end,
            _ => return Err(self.err(format!("a header value of {n} bytes runs past the end of the file"))),
        };
        if n <= 4096 {
            let mut scratch = [0u8; 4096];
            return self.fill(&mut scratch[..n as usize]);
        }
        self.reader.seek(SeekFrom::Start(end)).map_err(|e| corrupt(self.file, e.to_string()))?;
        self.pos = end;
        Ok(())
    }

    fn skip_value(&mut self, kind: u32, depth: usize) -> Result<()> {
        match (kind, fixed_size(kind)) {
            (_, Some(size)) => self.skip(size),
            (8, _) => {
                let n = self.len()?;
                self.skip(n)
            }
            (9, _) if depth < 4 => {
                let inner = self.u32()?;
                let count = self.len()?;
                match fixed_size(inner) {
                    Some(size) => self.skip(count.checked_mul(size).ok_or_else(|| self.err(format!("an array of {count} values is too long")))?),
                    None => (0..count).try_for_each(|_| self.skip_value(inner, depth + 1)),
                }
            }
            (9, _) => Err(self.err("arrays nested too deep".into())),
            (other, _) => Err(self.err(format!("unknown metadata value type {other}"))),
        }
    }
}

fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4 | 5 | 6 => Some(4),
        10 | 11 | 12 => Some(8),
        _ => None,
    }
}

/// Every tensor of the table: dimensions that are not zero and whose product
/// fits, bytes inside the file, no two tensors sharing bytes.
pub fn check_gguf_tensors(content: &gguf_file::Content, file_size: u64, file: &str) -> Result<()> {
    let mut ranges = Vec::with_capacity(content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let bad = |detail: String| EngineError::BadTensor { name: name.clone(), detail };
        let dims = info.shape.dims();
        if dims.is_empty() || dims.contains(&0) {
            return Err(bad(format!("has shape {dims:?}: a dimension is missing or zero")));
        }
        let count = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).ok_or_else(|| bad(format!("shape {dims:?} has too many values")))?;
        let (block, size) = (info.ggml_dtype.block_size() as u64, info.ggml_dtype.type_size() as u64);
        if count % block != 0 {
            return Err(bad(format!("{count} values do not fill blocks of {block}")));
        }
        let start = content.tensor_data_offset.checked_add(info.offset);
        let end = start.and_then(|s| (count / block).checked_mul(size).and_then(|b| s.checked_add(b)));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_size => ranges.push((start, end, name)),
            _ => return Err(corrupt(file, format!("tensor {name} lies past the end of the file ({file_size} bytes)"))),
        }
    }
    ranges.sort();
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(corrupt(file, format!("tensors {} and {} share bytes", pair[0].2, pair[1].2)));
        }
    }
    Ok(())
}

/// The model's shape is one this engine can hold: a bounded number of layers
/// and weights that fit [`WEIGHT_BUDGET_BYTES`] at `precision`, given the
/// bytes per weight the file stores.
pub fn check_size(config: &Config, precision: Precision, stored_bytes_per_weight: f64, file: &str) -> Result<()> {
    if config.n_layers > MAX_LAYERS {
        return Err(EngineError::BadConfig { file: file.into(), detail: format!("{} layers: at most {MAX_LAYERS} are supported", config.n_layers) });
    }
    let (weights, bytes) = (config.weight_count(), precision.bytes_per_weight(stored_bytes_per_weight));
    match weights.map(|w| w as f64 * bytes) {
        Some(b) if b <= WEIGHT_BUDGET_BYTES as f64 => Ok(()),
        b => Err(EngineError::BadConfig {
            file: file.into(),
            detail: format!(
                "this model would take about {:.1} GB at precision {}, more than the {} GB a browser tab can hold: choose a smaller precision (q8_0) or a smaller model",
                b.unwrap_or(f64::INFINITY) / 1e9,
                precision.name(),
                WEIGHT_BUDGET_BYTES >> 30
            ),
        }),
    }
}
