//! Step 1 of the flow: model bytes -> [`Model`]; then `forward(tokens) -> logits`.
//!
//! One llama forward pass for both file forms (a GGUF file, or a Hugging Face
//! checkpoint: config.json + safetensors). Why not candle-transformers'
//! `quantized_llama` / `llama`: those are two models with two KV caches, and
//! neither can cut its cache back to a common prefix, which the chat mode needs
//! to re-use the history's cache when a new turn arrives. So the forward pass
//! (the part llama2.c's `run.c` calls `forward`) is written here once, on
//! candle's ops and its `QMatMul`, and both loaders feed it the same weights.
//!
//! Layout convention: the GGUF one. llama.cpp's converter permutes the rows of
//! `attn_q` / `attn_k` so that RoPE rotates *interleaved* pairs (2i, 2i+1);
//! Hugging Face checkpoints rotate *halves* (i, i + d/2). The safetensors
//! loader applies the same permutation, so one `rope_i` serves both.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::RmsNorm;

use super::error::{EngineError, Result};

/// How the weights are held in memory and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The fastest form that computes what the file means: as stored, except
    /// quantized blocks that have no SIMD kernel in candle (Q4_1, Q5_0, Q5_1,
    /// Q3_K, Q5_K), which are re-quantized to the finer Q8_0 (which has one).
    /// f16 and bf16 weights (the official checkpoints are bf16) stay 16-bit
    /// and are widened exactly in this crate's kernel (`half_kernel`): the
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

    /// The precision called `name` ("auto", "stored", "f32", "f16", "q8_0"), any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::from_name(s)
            .ok_or_else(|| {
                EngineError::Settings(format!(
                    "unknown precision \"{s}\": use auto, stored, f32, f16 or q8_0"
                ))
            })
    }
}

/// The shape of a llama model: what `config.json` or the GGUF metadata says.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    fn check(&self, file: &str) -> Result<()> {
        let bad = |detail: String| Err(EngineError::BadConfig { file: file.into(), detail });
        if self.dim == 0 || self.n_layers == 0 || self.n_heads == 0 || self.n_kv_heads == 0 {
            return bad("a dimension is zero".into());
        }
        if self.dim % self.n_heads != 0 || self.n_heads % self.n_kv_heads != 0 {
            return bad(format!(
                "{} heads and {} key/value heads do not divide the width {}",
                self.n_heads, self.n_kv_heads, self.dim
            ));
        }
        if self.head_dim() % 2 != 0 {
            return bad("the head size must be even for RoPE".into());
        }
        Ok(())
    }
}

/// One transformer block's weights (shapes as (out, in), like nn.Linear).
struct Block {
    attn_norm: RmsNorm,     // (dim)
    wq: QMatMul,            // (n_heads * head_dim, dim), rows permuted for rope_i
    wk: QMatMul,            // (n_kv_heads * head_dim, dim), rows permuted for rope_i
    wv: QMatMul,            // (n_kv_heads * head_dim, dim)
    wo: QMatMul,            // (dim, n_heads * head_dim)
    ffn_norm: RmsNorm,      // (dim)
    w_gate: QMatMul,        // (hidden_dim, dim)
    w_up: QMatMul,          // (hidden_dim, dim)
    w_down: QMatMul,        // (dim, hidden_dim)
    kv: Option<(Tensor, Tensor)>, // cached keys/values: (1, n_kv_heads, cached_len, head_dim)
}

/// A loaded llama model with its KV cache.
pub struct Model {
    pub config: Config,
    embedding: QMatMul, // (vocab, dim); the same tensor as `lm_head` when tied
    blocks: Vec<Block>,
    final_norm: RmsNorm,
    lm_head: QMatMul, // (vocab, dim)
    cos: Tensor,      // (context_length, head_dim / 2)
    sin: Tensor,
    cached_len: usize,
    /// Bytes the weights take in memory, as used (after any precision change).
    pub weight_bytes: usize,
}

/// A GGUF file being read: any `Read + Seek` (a slice in memory, or the
/// worker's view of bytes held outside wasm memory).
pub trait ReadSeek: std::io::Read + std::io::Seek {}
impl<T: std::io::Read + std::io::Seek> ReadSeek for T {}

/// Where weights come from before they become `QMatMul`s, in GGUF naming.
enum WeightSource<'a> {
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
struct SafetensorsShard<'a> {
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
    fn contains(&self, name: &str) -> bool {
        match self {
            Self::Gguf { content, .. } => content.tensor_infos.contains_key(name),
            Self::Safetensors { names, .. } => names.contains_key(name),
        }
    }

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Stored> {
        let missing = |file: &str| EngineError::BadTensor { name: name.into(), detail: format!("missing from {file}") };
        let t = match self {
            Self::Gguf { content, reader } => {
                if !content.tensor_infos.contains_key(name) {
                    return Err(missing("the GGUF file"));
                }
                let q = content.tensor(reader, name, &Device::Cpu).map_err(|e| EngineError::Corrupt {
                    file: "the GGUF file".into(),
                    detail: format!("tensor {name}: {e}"),
                })?;
                match q.dtype() {
                    GgmlDType::F32 => Stored::Float(q.dequantize(&Device::Cpu)?),
                    GgmlDType::F16 => Stored::Float(q.dequantize_f16(&Device::Cpu)?),
                    GgmlDType::BF16 => Stored::Float(q.dequantize(&Device::Cpu)?.to_dtype(DType::BF16)?),
                    _ => Stored::Quantized(q),
                }
            }
            Self::Safetensors { shards, names, heads: (nh, nkv, hd) } => {
                let (i, hf_name) = names.get(name).ok_or_else(|| missing("model.safetensors"))?;
                let t = shards[*i].tensor(hf_name)?;
                // (`tensor` refuses dtypes other than f32, f16 and bf16.)
                // Permute q/k rows into the interleaved RoPE layout (see the module doc).
                Stored::Float(if name.ends_with("attn_q.weight") {
                    permute_for_rope_i(&t, *nh, *hd)?.contiguous()?
                } else if name.ends_with("attn_k.weight") {
                    permute_for_rope_i(&t, *nkv, *hd)?.contiguous()?
                } else {
                    t
                })
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
enum Stored {
    Quantized(QTensor),
    Float(Tensor),
}

impl Stored {
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
}

/// What `Precision::Auto` does with one stored quantized type.
fn auto_precision(dtype: GgmlDType) -> Precision {
    use GgmlDType::*;
    match dtype {
        Q4_1 | Q5_0 | Q5_1 | Q8_1 | Q3K | Q5K => Precision::Q8_0,
        _ => Precision::Stored,
    }
}

/// A weight matrix as it will be multiplied. Float weights: `QMatMul::Tensor`
/// holds f32 or bf16 and `QMatMul::TensorF16` f16 (candle has no bf16
/// variant); `linear` sends the 16-bit ones to this crate's `half_kernel`.
fn to_matmul(w: Stored, precision: Precision, bytes: &mut usize) -> Result<QMatMul> {
    let dev = Device::Cpu;
    // Auto: floats as stored (f32 runs candle's kernel, f16 and bf16 the half
    // kernel); quantized blocks as `auto_precision` says.
    let precision = match (&w, precision) {
        (Stored::Quantized(q), Precision::Auto) => auto_precision(q.dtype()),
        (Stored::Float(_), Precision::Auto) => Precision::Stored,
        (_, p) => p,
    };
    let m = match (w, precision) {
        (Stored::Float(t), Precision::Stored) if t.dtype() == DType::F16 => QMatMul::TensorF16(t),
        (Stored::Float(t), Precision::Stored) => QMatMul::Tensor(t),
        (Stored::Quantized(q), Precision::Stored) => QMatMul::QTensor(Arc::new(q)),
        (w, Precision::F32) => QMatMul::Tensor(w.to_f32()?),
        (Stored::Quantized(q), Precision::F16) => QMatMul::TensorF16(q.dequantize_f16(&dev)?),
        (Stored::Float(t), Precision::F16) => QMatMul::TensorF16(t.to_dtype(DType::F16)?),
        (Stored::Quantized(q), Precision::Q8_0) if q.dtype() == GgmlDType::Q8_0 => QMatMul::QTensor(Arc::new(q)),
        (w, Precision::Q8_0) => QMatMul::QTensor(Arc::new(QTensor::quantize(&w.to_f32()?, GgmlDType::Q8_0)?)),
        (_, Precision::Auto) => unreachable!("resolved above"),
    };
    *bytes += match &m {
        QMatMul::QTensor(t) => t.storage_size_in_bytes(),
        QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.elem_count() * t.dtype().size_in_bytes(),
    };
    Ok(m)
}

fn to_norm(w: Stored, eps: f64, bytes: &mut usize) -> Result<RmsNorm> {
    let w = w.to_f32()?;
    *bytes += w.elem_count() * 4;
    Ok(RmsNorm::new(w, eps))
}

impl Model {
    /// Loads a GGUF file held in memory (llama architecture, any quantization candle reads).
    pub fn from_gguf(bytes: &[u8], precision: Precision) -> Result<Self> {
        let mut reader = std::io::Cursor::new(bytes);
        let content = read_gguf_header(&mut reader, "the GGUF file")?;
        Self::from_gguf_reader(&content, &mut reader, precision)
    }

    /// Loads the tensors of a GGUF file whose header was read already.
    pub fn from_gguf_reader(content: &gguf_file::Content, reader: &mut dyn ReadSeek, precision: Precision) -> Result<Self> {
        let config = config_from_gguf(content)?;
        Self::from_weights(config, WeightSource::Gguf { content, reader }, precision)
    }

    /// Loads a Hugging Face llama checkpoint: `config.json` and the safetensors
    /// file(s) (one file, or every shard named in `model.safetensors.index.json`),
    /// each read tensor by tensor.
    pub fn from_safetensors(config_json: &[u8], shards: Vec<&mut dyn ReadSeek>, precision: Precision) -> Result<Self> {
        let config = config_from_json(config_json)?;
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
        Self::from_weights(config, WeightSource::Safetensors { shards: opened, names, heads }, precision)
    }

    fn from_weights(config: Config, mut w: WeightSource, precision: Precision) -> Result<Self> {
        let c = &config;
        let (dim, hd) = (c.dim, c.head_dim());
        let mut bytes = 0;
        let embedding_q = w.take("token_embd.weight", &[c.vocab_size, dim])?;
        // Tied embeddings (SmolLM2): no `output.weight`, the lm head re-uses the embedding.
        let (embedding, lm_head) = match w.contains("output.weight") {
            true => {
                let out = w.take("output.weight", &[c.vocab_size, dim])?;
                (to_matmul(embedding_q, precision, &mut bytes)?, to_matmul(out, precision, &mut bytes)?)
            }
            false => {
                let m = to_matmul(embedding_q, precision, &mut bytes)?;
                (m.clone(), m)
            }
        };
        let mut blocks = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let mut take = |suffix: &str, shape: &[usize]| w.take(&format!("blk.{i}.{suffix}"), shape);
            let attn_norm = take("attn_norm.weight", &[dim])?;
            let wq = take("attn_q.weight", &[c.n_heads * hd, dim])?;
            let wk = take("attn_k.weight", &[c.n_kv_heads * hd, dim])?;
            let wv = take("attn_v.weight", &[c.n_kv_heads * hd, dim])?;
            let wo = take("attn_output.weight", &[dim, c.n_heads * hd])?;
            let ffn_norm = take("ffn_norm.weight", &[dim])?;
            let w_gate = take("ffn_gate.weight", &[c.hidden_dim, dim])?;
            let w_up = take("ffn_up.weight", &[c.hidden_dim, dim])?;
            let w_down = take("ffn_down.weight", &[dim, c.hidden_dim])?;
            let eps = c.rms_norm_eps;
            blocks.push(Block {
                attn_norm: to_norm(attn_norm, eps, &mut bytes)?,
                wq: to_matmul(wq, precision, &mut bytes)?,
                wk: to_matmul(wk, precision, &mut bytes)?,
                wv: to_matmul(wv, precision, &mut bytes)?,
                wo: to_matmul(wo, precision, &mut bytes)?,
                ffn_norm: to_norm(ffn_norm, eps, &mut bytes)?,
                w_gate: to_matmul(w_gate, precision, &mut bytes)?,
                w_up: to_matmul(w_up, precision, &mut bytes)?,
                w_down: to_matmul(w_down, precision, &mut bytes)?,
                kv: None,
            });
        }
        let final_norm = to_norm(w.take("output_norm.weight", &[dim])?, c.rms_norm_eps, &mut bytes)?;
        let (cos, sin) = rope_tables(c)?;
        Ok(Self { config, embedding, blocks, final_norm, lm_head, cos, sin, cached_len: 0, weight_bytes: bytes })
    }

    /// How many positions the KV cache holds.
    pub fn cached_len(&self) -> usize {
        self.cached_len
    }

    /// Forgets cached positions from `len` on (chat: keep the common prefix).
    pub fn truncate_cache(&mut self, len: usize) -> Result<()> {
        if len >= self.cached_len {
            return Ok(());
        }
        for b in &mut self.blocks {
            b.kv = match (len, b.kv.take()) {
                (0, _) | (_, None) => None,
                (len, Some((k, v))) => Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?)),
            };
        }
        self.cached_len = len;
        Ok(())
    }

    /// How the weights are stored ("Q8_0", "BF16", ...): what decides which
    /// matmul kernels a forward pass runs.
    pub fn weight_kinds(&self) -> std::collections::BTreeSet<String> {
        let kind = |m: &QMatMul| match m {
            QMatMul::QTensor(q) => format!("{:?}", q.dtype()),
            QMatMul::Tensor(t) | QMatMul::TensorF16(t) => format!("{:?}", t.dtype()),
        };
        let mut kinds: std::collections::BTreeSet<String> = [kind(&self.embedding), kind(&self.lm_head)].into();
        for b in &self.blocks {
            kinds.extend([&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down].map(kind));
        }
        kinds
    }

    pub fn clear_cache(&mut self) {
        for b in &mut self.blocks {
            b.kv = None;
        }
        self.cached_len = 0;
    }

    /// Runs `tokens` at positions `cached_len..cached_len + tokens.len()`, extends
    /// the KV cache, and returns the logits (vocab,) of the last position.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let (t, pos) = (tokens.len(), self.cached_len);
        if t == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if pos + t > self.config.context_length {
            return Err(EngineError::PromptTooLong { prompt_tokens: pos + t, context: self.config.context_length });
        }
        let c = &self.config;
        let (hd, nh, nkv) = (c.head_dim(), c.n_heads, c.n_kv_heads);
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embedding.embedding(&ids)?.to_dtype(DType::F32)?.unsqueeze(0)?; // (1, t, dim)
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        // (1, 1, t, pos + t): query i sees keys 0..=pos + i; no mask needed for one token.
        let mask = match t {
            1 => None,
            _ => Some(candle_transformers::utils::build_additive_causal_mask(t, pos, None, &Device::Cpu, DType::F32)?),
        };
        for b in &mut self.blocks {
            // Attention: x += wo · softmax(q kᵀ / √hd + mask) v
            let h = b.attn_norm.forward(&x)?;
            let q = linear(&b.wq, &h)?.reshape((1, t, nh, hd))?.transpose(1, 2)?.contiguous()?;
            let k = linear(&b.wk, &h)?.reshape((1, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = linear(&b.wv, &h)?.reshape((1, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (k, v) = match b.kv.take() {
                None => (k, v),
                Some((kc, vc)) => (Tensor::cat(&[&kc, &k], 2)?, Tensor::cat(&[&vc, &v], 2)?),
            };
            b.kv = Some((k.clone(), v.clone()));
            let k = candle_transformers::utils::repeat_kv(k, nh / nkv)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v, nh / nkv)?.contiguous()?;
            let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
            let att = match &mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((1, t, nh * hd))?;
            x = (x + linear(&b.wo, &y)?)?;
            // Feed-forward (SwiGLU): x += w_down · (silu(w_gate · h) * (w_up · h))
            let h = b.ffn_norm.forward(&x)?;
            let gate = candle_nn::ops::silu(&linear(&b.w_gate, &h)?)?;
            let ff = linear(&b.w_down, &(gate * linear(&b.w_up, &h)?)?)?;
            x = (x + ff)?;
        }
        self.cached_len = pos + t;
        let last = x.narrow(1, t - 1, 1)?;
        let logits = linear(&self.lm_head, &self.final_norm.forward(&last)?)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

/// Prompts at least this long are multiplied against dequantized weights.
pub(crate) const PREFILL_DEQUANTIZE_MIN_TOKENS: usize = 8;

/// `x · wᵀ`. For a prompt (many rows), quantized weights are dequantized one
/// matrix at a time and multiplied in f32: candle's quantized matmul re-reads
/// every weight block once per row, while a float matmul reads them once for
/// all rows (prefill ~1.6x faster). One token at a time keeps the quantized kernel.
/// f16 and bf16 weights go through this crate's kernel (see `half_kernel`).
fn linear(w: &QMatMul, x: &Tensor) -> Result<Tensor> {
    match w {
        QMatMul::Tensor(w) | QMatMul::TensorF16(w) if super::half_kernel::handles(w.dtype()) => Ok(super::half_kernel::matmul(x, w)?),
        QMatMul::QTensor(q) if x.dims().iter().rev().nth(1).is_some_and(|&rows| rows >= PREFILL_DEQUANTIZE_MIN_TOKENS) => {
            let weights = q.dequantize(&Device::Cpu)?;
            Ok(x.broadcast_matmul(&weights.t()?)?)
        }
        _ => Ok(w.forward(x)?),
    }
}

fn rope_tables(c: &Config) -> Result<(Tensor, Tensor)> {
    let hd = c.head_dim();
    let inv_freq: Vec<f32> =
        (0..hd).step_by(2).map(|i| 1f32 / c.rope_theta.powf(i as f32 / hd as f32)).collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, hd / 2), &Device::Cpu)?;
    let positions = Tensor::arange(0u32, c.context_length as u32, &Device::Cpu)?
        .to_dtype(DType::F32)?
        .reshape((c.context_length, 1))?;
    let angles = positions.matmul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// (n_heads * hd, dim) in HF "halves" order -> GGUF interleaved order, as llama.cpp's converter does.
fn permute_for_rope_i(w: &Tensor, n_heads: usize, hd: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    Ok(w.reshape((n_heads, 2, hd / 2, cols))?.transpose(1, 2)?.reshape((rows, cols))?)
}

/// The inverse of [`permute_for_rope_i`]: GGUF order -> HF order (used to write checkpoints).
pub fn permute_for_rope_halves(w: &Tensor, n_heads: usize, hd: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    Ok(w.reshape((n_heads, hd / 2, 2, cols))?.transpose(1, 2)?.reshape((rows, cols))?)
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
    reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| corrupt(&e))?;
    let mut reader = reader;
    gguf_file::Content::read(&mut reader).map_err(|e| match e.to_string() {
        // candle's words for a ggml type id it does not know
        m if m.contains("unknown dtype") => EngineError::UnsupportedQuantization { file: file.into(), detail: m },
        _ => corrupt(&e),
    })
}

pub fn config_from_gguf(ct: &gguf_file::Content) -> Result<Config> {
    let arch = ct.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
    if arch != "llama" {
        return Err(EngineError::UnsupportedArchitecture(arch));
    }
    let num = |key: &str| -> Result<usize> {
        let v = ct.metadata.get(&format!("llama.{key}")).ok_or_else(|| EngineError::BadConfig {
            file: "the GGUF file".into(),
            detail: format!("metadata llama.{key} is missing"),
        })?;
        v.to_u32().map(|n| n as usize).or_else(|_| v.to_u64().map(|n| n as usize)).map_err(|e| EngineError::BadConfig {
            file: "the GGUF file".into(),
            detail: format!("metadata llama.{key}: {e}"),
        })
    };
    let float = |key: &str, default: f32| ct.metadata.get(&format!("llama.{key}")).and_then(|v| v.to_f32().ok()).unwrap_or(default);
    let dim = num("embedding_length")?;
    let vocab_size = match ct.tensor_infos.get("token_embd.weight") {
        Some(info) => info.shape.dims()[0],
        None => num("vocab_size")?,
    };
    let config = Config {
        dim,
        hidden_dim: num("feed_forward_length")?,
        n_layers: num("block_count")?,
        n_heads: num("attention.head_count")?,
        n_kv_heads: num("attention.head_count_kv").or_else(|_| num("attention.head_count"))?,
        vocab_size,
        context_length: num("context_length")?,
        rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5) as f64,
        rope_theta: float("rope.freq_base", 10000.0),
    };
    config.check("the GGUF file")?;
    Ok(config)
}

/// The subset of a Hugging Face `config.json` a llama needs.
#[derive(serde::Deserialize)]
struct HfConfig {
    #[serde(default)]
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    vocab_size: usize,
    max_position_embeddings: usize,
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f32,
}

fn default_rope_theta() -> f32 {
    10000.0
}

fn config_from_json(bytes: &[u8]) -> Result<Config> {
    let hf: HfConfig = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::BadConfig { file: "config.json".into(), detail: e.to_string() })?;
    if let Some(t) = &hf.model_type {
        if t != "llama" {
            return Err(EngineError::UnsupportedArchitecture(t.clone()));
        }
    }
    let config = Config {
        dim: hf.hidden_size,
        hidden_dim: hf.intermediate_size,
        n_layers: hf.num_hidden_layers,
        n_heads: hf.num_attention_heads,
        n_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        vocab_size: hf.vocab_size,
        context_length: hf.max_position_embeddings,
        rms_norm_eps: hf.rms_norm_eps,
        rope_theta: hf.rope_theta,
    };
    config.check("config.json")?;
    Ok(config)
}
