//! Step 1a of the flow: model files -> weights in the form they are multiplied.
//!
//! Reads a GGUF file (candle's reader) or a Hugging Face checkpoint
//! (config.json + safetensors, tensor by tensor), names every tensor the GGUF
//! way, and turns each into a [`Matrix`] at the chosen [`Precision`].
//!
//! Layout convention: the GGUF one. llama.cpp's converter permutes the rows of
//! `attn_q` / `attn_k` so that RoPE rotates *interleaved* pairs (2i, 2i+1);
//! Hugging Face checkpoints rotate *halves* (i, i + d/2). The safetensors
//! reader applies the same permutation, so one RoPE serves both.

use std::collections::HashMap;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::error::{EngineError, Result};
use super::kernels::Half;
use super::matrix::Matrix;
use super::config::Config;
use super::file_checks::{check_gguf_alignment, check_gguf_tensors};

/// How the weights are held in memory and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The fastest form that computes what the file means: as stored, except
    /// quantized blocks that have no SIMD kernel in candle (Q4_1, Q5_0, Q5_1,
    /// Q3_K, Q5_K), which are re-quantized to the finer Q8_0 (which has one).
    /// f16 and bf16 weights (the official checkpoints are bf16) stay 16-bit
    /// and are widened exactly in this crate's kernels (`kernels::dot_half`): the
    /// arithmetic of f32 weights at half their memory.
    #[default]
    Auto,
    /// As the file stores them (quantized GGUF blocks stay quantized).
    Stored,
    /// Dequantized to float32: the reference arithmetic.
    F32,
    /// Rounded to float16 (half the memory of f32).
    F16,
    /// Re-quantized to 8-bit blocks (ggml's Q8_0).
    Q8_0,
}

impl Precision {
    pub const ALL: [Precision; 5] = [Self::Auto, Self::Stored, Self::F32, Self::F16, Self::Q8_0];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Stored => "stored",
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
        }
    }

    /// The bytes a weight takes in memory at this precision, for weights
    /// stored at `stored` bytes each (plain arithmetic: the load's size
    /// check and the page's model picker use the same).
    pub fn bytes_per_weight(self, stored: f64) -> f64 {
        let q8 = 36.0 / 32.0; // 32 quants + an f32 scale
        match self {
            Precision::F32 => 4.0,
            Precision::F16 => 2.0,
            Precision::Q8_0 => q8,
            Precision::Stored => stored,
            // Quantized blocks may be re-quantized to Q8_0; floats stay as stored.
            Precision::Auto => stored.max(q8),
        }
    }

    /// The precision called `name` ("auto", "stored", "f32", "f16", "q8_0"), any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A model file being read: any `Read + Seek` (bytes in memory, a file on
/// disk, or the worker's view of a browser Blob held outside wasm memory).
pub trait ReadSeek: std::io::Read + std::io::Seek {}
impl<T: std::io::Read + std::io::Seek> ReadSeek for T {}

/// Where weights come from before they become [`Matrix`]es, in GGUF naming.
pub(crate) enum WeightSource<'a> {
    /// A GGUF file: each tensor is read when it is converted, so the file's
    /// form of one tensor is dropped before the next is read (lower peak memory).
    Gguf { content: &'a gguf_file::Content, reader: &'a mut dyn ReadSeek },
    /// Safetensors files: likewise, one tensor at a time from each file.
    Safetensors {
        shards: Vec<SafetensorsShard<'a>>,
        /// GGUF name -> (shard index, Hugging Face name)
        names: HashMap<String, (usize, String)>,
        /// (n_heads, n_kv_heads, head_dim) for the q/k row permutation
        heads: (usize, usize, usize),
    },
}

/// One safetensors file being read: its header, parsed by the `safetensors`
/// crate, and a reader positioned by tensor (the file is never read whole,
/// so in the browser it can stay a Blob outside wasm memory).
pub(crate) struct SafetensorsShard<'a> {
    /// The file's name, for messages.
    file: String,
    metadata: safetensors::tensor::Metadata,
    /// Where the tensor data starts: after the 8-byte length and the JSON header.
    data_start: u64,
    reader: &'a mut dyn ReadSeek,
}

impl<'a> SafetensorsShard<'a> {
    fn open(file: String, reader: &'a mut dyn ReadSeek) -> Result<Self> {
        let corrupt = |detail: String| EngineError::Corrupt { file: file.clone(), detail };
        let mut len = [0u8; 8];
        reader.seek(std::io::SeekFrom::Start(0)).and_then(|_| reader.read_exact(&mut len)).map_err(|e| corrupt(format!("no safetensors header: {e}")))?;
        let header_len = u64::from_le_bytes(len);
        // The format caps headers at 100 MB; a bigger number means this is not a safetensors file.
        if header_len > 100_000_000 {
            return Err(corrupt(format!("not a safetensors file (header length {header_len})")));
        }
        let mut header = vec![0u8; header_len as usize];
        reader.read_exact(&mut header).map_err(|e| corrupt(format!("the header is cut short: {e}")))?;
        let metadata: safetensors::tensor::Metadata =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let data_start = 8 + header_len;
        let size = reader.seek(std::io::SeekFrom::End(0)).map_err(|e| corrupt(e.to_string()))?;
        if size < data_start + metadata.data_len() as u64 {
            return Err(corrupt(format!(
                "the file is cut short: {size} bytes, the header describes {}",
                data_start + metadata.data_len() as u64
            )));
        }
        Ok(Self { file, metadata, data_start, reader })
    }

    fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// Reads one tensor (f32, f16 or bf16 as stored), straight into the
    /// tensor's own buffer: loading is mostly copying, so one copy fewer than
    /// reading the bytes and then converting them counts.
    fn tensor(&mut self, name: &str) -> Result<Tensor> {
        let corrupt = |detail: String| EngineError::Corrupt { file: self.file.clone(), detail: format!("tensor {name}: {detail}") };
        let info = self.metadata.info(name).ok_or_else(|| corrupt("missing".into()))?.clone();
        let (start, end) = info.data_offsets;
        self.reader.seek(std::io::SeekFrom::Start(self.data_start + start as u64)).map_err(|e| corrupt(e.to_string()))?;
        let count: usize = info.shape.iter().product();
        use safetensors::Dtype;
        let tensor = match info.dtype {
            Dtype::F32 => read_into::<f32>(self.reader, count, end - start),
            Dtype::F16 => read_into::<half::f16>(self.reader, count, end - start),
            Dtype::BF16 => read_into::<half::bf16>(self.reader, count, end - start),
            other => return Err(EngineError::BadTensor { name: name.into(), detail: format!("has dtype {other:?}; expected f32, f16 or bf16") }),
        };
        let data = tensor.map_err(|e| corrupt(e))?;
        Ok(data.reshape(info.shape)?)
    }
}

#[cfg(target_endian = "big")]
compile_error!("safetensors are little-endian; read_into copies them as they are");

/// Reads `count` little-endian values of `T` (`bytes` in all) into a new 1-d tensor.
fn read_into<T: candle_core::WithDType + Default>(reader: &mut dyn ReadSeek, count: usize, bytes: usize) -> std::result::Result<Tensor, String> {
    if count * std::mem::size_of::<T>() != bytes {
        return Err(format!("{bytes} bytes do not hold {count} values of {} bytes", std::mem::size_of::<T>()));
    }
    let mut values = vec![T::default(); count];
    // SAFETY: f32/f16/bf16 are plain bytes with no invalid bit patterns; the
    // slice covers exactly the vector's initialised memory. Little-endian
    // targets only (wasm32, x86, arm), like safetensors itself.
    let raw = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, bytes) };
    reader.read_exact(raw).map_err(|e| e.to_string())?;
    Tensor::from_vec(values, count, &Device::Cpu).map_err(|e| e.to_string())
}

impl WeightSource<'_> {
    /// The bytes per value a checkpoint's files store, on average (2 for bf16).
    pub(crate) fn bytes_per_weight(&self) -> f64 {
        match self {
            Self::Gguf { content, .. } => gguf_bytes_per_weight(content),
            Self::Safetensors { shards, .. } => {
                let values: f64 = shards.iter().flat_map(|s| s.metadata.tensors().into_values()).map(|t| t.shape.iter().map(|&d| d as f64).product::<f64>()).sum();
                let bytes: f64 = shards.iter().map(|s| s.metadata.data_len() as f64).sum();
                bytes / values.max(1.0)
            }
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            Self::Gguf { content, .. } => content.tensor_infos.contains_key(name),
            Self::Safetensors { names, .. } => names.contains_key(name),
        }
    }

    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> Result<FileTensor> {
        let missing = |file: &str| EngineError::BadTensor { name: name.into(), detail: format!("missing from {file}") };
        let t = match self {
            Self::Gguf { content, reader } => {
                match content.tensor_infos.get(name) {
                    None => return Err(missing("the GGUF file")),
                    // Checked before reading: the file's bytes are never allocated for a wrong shape.
                    Some(info) if info.shape.dims() != shape => {
                        return Err(EngineError::BadTensor { name: name.into(), detail: format!("has shape {:?}, expected {:?}", info.shape.dims(), shape) })
                    }
                    Some(_) => {}
                }
                let q = content.tensor(reader, name, &Device::Cpu).map_err(|e| EngineError::Corrupt {
                    file: "the GGUF file".into(),
                    detail: format!("tensor {name}: {e}"),
                })?;
                match q.dtype() {
                    GgmlDType::F32 => FileTensor::Float(q.dequantize(&Device::Cpu)?),
                    GgmlDType::F16 => FileTensor::Float(q.dequantize_f16(&Device::Cpu)?),
                    GgmlDType::BF16 => FileTensor::Float(q.dequantize(&Device::Cpu)?.to_dtype(DType::BF16)?),
                    _ => FileTensor::Quantized(q),
                }
            }
            Self::Safetensors { shards, names, heads: (nh, nkv, hd) } => {
                let (i, hf_name) = names.get(name).ok_or_else(|| missing("model.safetensors"))?;
                let t = shards[*i].tensor(hf_name)?;
                // (`tensor` refuses dtypes other than f32, f16 and bf16.)
                FileTensor::Float(permute_qk(name, t, (*nh, *nkv, *hd), RopeRows::ToGguf)?)
            }
        };
        if t.dims() != shape {
            return Err(EngineError::BadTensor {
                name: name.into(),
                detail: format!("has shape {:?}, expected {:?}", t.dims(), shape),
            });
        }
        Ok(t)
    }
}

/// One tensor as the file stores it: ggml blocks, or floats (f32, f16 or bf16).
pub(crate) enum FileTensor {
    Quantized(QTensor),
    Float(Tensor),
}

impl FileTensor {
    fn dims(&self) -> &[usize] {
        match self {
            Self::Quantized(q) => q.shape().dims(),
            Self::Float(t) => t.dims(),
        }
    }

    fn to_f32(&self) -> Result<Tensor> {
        Ok(match self {
            Self::Quantized(q) => q.dequantize(&Device::Cpu)?,
            Self::Float(t) => t.to_dtype(DType::F32)?,
        })
    }

    /// The values as f32 (a norm's weights).
    pub(crate) fn into_vec(self) -> Result<Vec<f32>> {
        Ok(self.to_f32()?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// What `Precision::Auto` does with one stored quantized type.
fn auto_precision(dtype: GgmlDType) -> Precision {
    use GgmlDType::*;
    match dtype {
        Q4_1 | Q5_0 | Q5_1 | Q8_1 | Q3K | Q5K => Precision::Q8_0,
        _ => Precision::Stored,
    }
}

/// A weight matrix in the form it will be multiplied at `precision`.
pub(crate) fn to_matrix(w: FileTensor, precision: Precision, name: &str) -> Result<Matrix> {
    let (rows, cols) = match w.dims() {
        &[rows, cols] => (rows, cols),
        dims => return Err(EngineError::BadTensor { name: name.into(), detail: format!("has shape {dims:?}, expected a matrix") }),
    };
    // Auto: floats as stored (f32, or 16-bit widened exactly in the kernel);
    // quantized blocks as `auto_precision` says.
    let precision = match (&w, precision) {
        (FileTensor::Quantized(q), Precision::Auto) => auto_precision(q.dtype()),
        (FileTensor::Float(_), Precision::Auto) => Precision::Stored,
        (_, p) => p,
    };
    let bits = |t: &Tensor| -> Result<Vec<u16>> {
        Ok(match t.dtype() {
            DType::BF16 => t.flatten_all()?.to_vec1::<half::bf16>()?.into_iter().map(|v| v.to_bits()).collect(),
            _ => t.to_dtype(DType::F16)?.flatten_all()?.to_vec1::<half::f16>()?.into_iter().map(|v| v.to_bits()).collect(),
        })
    };
    let f32s = |w: &FileTensor| -> Result<Vec<f32>> { Ok(w.to_f32()?.flatten_all()?.to_vec1::<f32>()?) };
    Ok(match (&w, precision) {
        (FileTensor::Float(t), Precision::Stored) if t.dtype() == DType::BF16 => Matrix::half(Half::Bf16, rows, cols, bits(t)?),
        (FileTensor::Float(t), Precision::Stored) if t.dtype() == DType::F16 => Matrix::half(Half::F16, rows, cols, bits(t)?),
        (FileTensor::Float(_), Precision::Stored) | (_, Precision::F32) => Matrix::f32(rows, cols, f32s(&w)?),
        (FileTensor::Quantized(q), Precision::Stored) => Matrix::from_blocks(q, name)?,
        (FileTensor::Quantized(q), Precision::F16) => Matrix::half(Half::F16, rows, cols, bits(&q.dequantize_f16(&Device::Cpu)?)?),
        (FileTensor::Float(t), Precision::F16) => Matrix::half(Half::F16, rows, cols, bits(t)?),
        (FileTensor::Quantized(q), Precision::Q8_0) if q.dtype() == GgmlDType::Q8_0 => Matrix::from_blocks(q, name)?,
        (_, Precision::Q8_0) => Matrix::q8_from_f32(rows, cols, &f32s(&w)?, name)?,
        (_, Precision::Auto) => unreachable!("resolved above"),
    })
}

/// Which way q/k rows move between the two RoPE layouts (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeRows {
    /// Hugging Face's "halves" order -> GGUF's interleaved order (loading safetensors).
    ToGguf,
    /// The inverse (writing a checkpoint from a GGUF file).
    ToHuggingFace,
}

/// Tensor `name` (GGUF naming) with its rows permuted as llama.cpp's
/// converter does when it is `attn_q` or `attn_k`; any other tensor as is.
/// `heads`: (n_heads, n_kv_heads, head_dim).
pub fn permute_qk(name: &str, t: Tensor, heads: (usize, usize, usize), to: RopeRows) -> Result<Tensor> {
    let (n_heads, n_kv_heads, hd) = heads;
    let n = match name {
        _ if name.ends_with("attn_q.weight") => n_heads,
        _ if name.ends_with("attn_k.weight") => n_kv_heads,
        _ => return Ok(t),
    };
    let (rows, cols) = t.dims2()?;
    let split = match to {
        RopeRows::ToGguf => (n, 2, hd / 2, cols),
        RopeRows::ToHuggingFace => (n, hd / 2, 2, cols),
    };
    Ok(t.reshape(split)?.transpose(1, 2)?.reshape((rows, cols))?.contiguous()?)
}

/// Per-block tensor names: (Hugging Face, GGUF).
pub const BLOCK_TENSORS: [(&str, &str); 9] = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

/// Whole-model tensor names: (Hugging Face, GGUF).
pub const MODEL_TENSORS: [(&str, &str); 3] = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Hugging Face tensor name -> GGUF tensor name (None for tensors we do not use,
/// such as `rotary_emb.inv_freq`).
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((_, g)) = MODEL_TENSORS.iter().find(|(h, _)| *h == hf) {
        return Some(g.to_string());
    }
    let (i, part) = hf.strip_prefix("model.layers.")?.split_once('.')?;
    let (_, g) = BLOCK_TENSORS.iter().find(|(h, _)| *h == part)?;
    Some(format!("blk.{i}.{g}"))
}

/// GGUF tensor name -> Hugging Face tensor name.
pub fn hf_name(gguf: &str) -> Option<String> {
    if let Some((h, _)) = MODEL_TENSORS.iter().find(|(_, g)| *g == gguf) {
        return Some(h.to_string());
    }
    let (i, part) = gguf.strip_prefix("blk.")?.split_once('.')?;
    let (h, _) = BLOCK_TENSORS.iter().find(|(_, g)| *g == part)?;
    Some(format!("model.layers.{i}.{h}"))
}

/// Parses a GGUF header from memory; the cursor is what `Content::tensor` reads from.
pub fn read_gguf<'a>(bytes: &'a [u8], file: &str) -> Result<(gguf_file::Content, std::io::Cursor<&'a [u8]>)> {
    let mut cursor = std::io::Cursor::new(bytes);
    let content = read_gguf_header(&mut cursor, file)?;
    Ok((content, cursor))
}

/// Parses a GGUF header (metadata and tensor table) from the start of `reader`.
pub fn read_gguf_header(reader: &mut dyn ReadSeek, file: &str) -> Result<gguf_file::Content> {
    let corrupt = |e: &dyn std::fmt::Display| EngineError::Corrupt { file: file.into(), detail: e.to_string() };
    let mut magic = [0u8; 4];
    reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| corrupt(&e))?;
    if reader.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(EngineError::NotGguf { file: file.into() });
    }
    check_gguf_alignment(reader, file)?;
    reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| corrupt(&e))?;
    let mut reader = reader;
    let content = gguf_file::Content::read(&mut reader).map_err(|e| match e.to_string() {
        // candle's words for a ggml type id it does not know
        m if m.contains("unknown dtype") => EngineError::UnsupportedQuantization { file: file.into(), detail: m },
        _ => corrupt(&e),
    })?;
    let size = reader.seek(std::io::SeekFrom::End(0)).map_err(|e| corrupt(&e))?;
    check_gguf_tensors(&content, size, file)?;
    Ok(content)
}

/// The bytes per value a GGUF file's tensors take, on average (the header was checked).
pub(crate) fn gguf_bytes_per_weight(content: &gguf_file::Content) -> f64 {
    let (values, bytes) = content.tensor_infos.values().fold((0f64, 0f64), |(v, b), info| {
        let n = info.shape.elem_count() as f64;
        (v + n, b + n / info.ggml_dtype.block_size() as f64 * info.ggml_dtype.type_size() as f64)
    });
    bytes / values.max(1.0)
}

/// The weights of a checkpoint's safetensors file(s) (one file, or every
/// shard), each file's header read now and its tensors when taken.
pub(crate) fn safetensors_source<'a>(config: &Config, shards: Vec<&'a mut dyn ReadSeek>) -> Result<WeightSource<'a>> {
    let count = shards.len();
    let mut opened = Vec::with_capacity(count);
    let mut names = HashMap::new();
    for (i, reader) in shards.into_iter().enumerate() {
        let file = if count == 1 { "model.safetensors".to_string() } else { format!("safetensors shard {}", i + 1) };
        let shard = SafetensorsShard::open(file, reader)?;
        for hf_name in shard.names() {
            if let Some(name) = gguf_name(&hf_name) {
                names.insert(name, (i, hf_name));
            }
        }
        opened.push(shard);
    }
    let heads = (config.n_heads, config.n_kv_heads, config.head_dim());
    Ok(WeightSource::Safetensors { shards: opened, names, heads })
}
