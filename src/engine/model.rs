//! Step 1 of the flow: weights -> [`Model`]; then `forward(tokens) -> logits`.
//!
//! The llama forward pass, written out on plain f32 slices the way llama2.c's
//! `run.c` does it: embed, then per block RMS-norm -> q/k/v -> RoPE ->
//! attention over the KV cache -> output projection, RMS-norm -> SwiGLU
//! feed-forward; final norm; logits. Why not candle-transformers' llama
//! models: two models with two caches, neither can cut its KV cache back to a
//! shared prefix (the chat re-uses the history's cache), and their kernels
//! round a position differently in a batch and alone (see `kernels`).
//!
//! Every sum here has one order whatever the batch: a position's logits are
//! the same bits read in a prompt of any length, one token at a time, or after
//! any re-used prefix of the cache. Transcendental functions are the same code
//! natively and in wasm: `kernels`' exp (SiLU, softmax), `libm` (RoPE).
//!
//! Loading (files, names, precisions) is in `weights`; the matrices in `matrix`.

use candle_core::quantized::gguf_file;

use super::error::{EngineError, Result};
use super::file_checks::check_size;
use super::kernels;
use super::matrix::{matmul_many, Matrix};
use super::config::{config_from_gguf, config_from_json, Config};
use super::weights::{read_gguf_header, safetensors_source, to_matrix, FileTensor, Precision, ReadSeek, WeightSource};

/// One transformer block's weights (shapes as (out, in), like nn.Linear) and its KV cache.
struct Block {
    attn_norm: Vec<f32>, // (dim)
    wq: Matrix,          // (n_heads * head_dim, dim), rows permuted for interleaved RoPE
    wk: Matrix,          // (n_kv_heads * head_dim, dim), likewise
    wv: Matrix,          // (n_kv_heads * head_dim, dim)
    wo: Matrix,          // (dim, n_heads * head_dim)
    ffn_norm: Vec<f32>,  // (dim)
    w_gate: Matrix,      // (hidden_dim, dim)
    w_up: Matrix,        // (hidden_dim, dim)
    w_down: Matrix,      // (dim, hidden_dim)
    keys: Vec<f32>,      // (cached_len, n_kv_heads * head_dim), after RoPE
    values: Vec<f32>,    // (cached_len, n_kv_heads * head_dim)
}

/// A loaded llama model with its KV cache.
pub struct Model {
    pub config: Config,
    embedding: Matrix,        // (vocab, dim)
    lm_head: Option<Matrix>,  // (vocab, dim); None when tied to the embedding (SmolLM2)
    blocks: Vec<Block>,
    final_norm: Vec<f32>,
    cached_len: usize,
    /// Bytes the weights take in memory, as used (after any precision change).
    pub weight_bytes: usize,
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
        let source = WeightSource::Gguf { content, reader };
        check_size(&config, precision, source.bytes_per_weight(), "the GGUF file")?;
        Self::from_weights(config, source, precision)
    }

    /// Loads a Hugging Face llama checkpoint: `config.json` and the safetensors
    /// file(s) (one file, or every shard named in `model.safetensors.index.json`),
    /// each read tensor by tensor.
    pub fn from_safetensors(config_json: &[u8], shards: Vec<&mut dyn ReadSeek>, precision: Precision) -> Result<Self> {
        let config = config_from_json(config_json)?;
        let source = safetensors_source(&config, shards)?;
        check_size(&config, precision, source.bytes_per_weight(), "config.json")?;
        Self::from_weights(config, source, precision)
    }

    fn from_weights(config: Config, mut w: WeightSource, precision: Precision) -> Result<Self> {
        let c = &config;
        let (dim, hd) = (c.dim, c.head_dim());
        let mut bytes = 0;
        let mut matrix = |w: &mut WeightSource, name: &str, shape: &[usize]| -> Result<Matrix> {
            let m = to_matrix(w.take(name, shape)?, precision, name)?;
            bytes += m.bytes();
            Ok(m)
        };
        let embedding = matrix(&mut w, "token_embd.weight", &[c.vocab_size, dim])?;
        // Tied embeddings (SmolLM2): no `output.weight`, the lm head re-uses the embedding.
        let lm_head = match w.contains("output.weight") {
            true => Some(matrix(&mut w, "output.weight", &[c.vocab_size, dim])?),
            false => None,
        };
        // A layer count must be backed by tensors before anything is sized by it.
        let last = format!("blk.{}.attn_q.weight", c.n_layers - 1);
        if !w.contains(&last) {
            return Err(EngineError::BadTensor { name: last, detail: format!("missing: the model declares {} layers", c.n_layers) });
        }
        let mut blocks = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let name = |suffix: &str| format!("blk.{i}.{suffix}");
            let norm = |w: &mut WeightSource, suffix: &str| w.take(&name(suffix), &[dim]).and_then(FileTensor::into_vec);
            let attn_norm = norm(&mut w, "attn_norm.weight")?;
            let ffn_norm = norm(&mut w, "ffn_norm.weight")?;
            blocks.push(Block {
                attn_norm,
                wq: matrix(&mut w, &name("attn_q.weight"), &[c.n_heads * hd, dim])?,
                wk: matrix(&mut w, &name("attn_k.weight"), &[c.n_kv_heads * hd, dim])?,
                wv: matrix(&mut w, &name("attn_v.weight"), &[c.n_kv_heads * hd, dim])?,
                wo: matrix(&mut w, &name("attn_output.weight"), &[dim, c.n_heads * hd])?,
                ffn_norm,
                w_gate: matrix(&mut w, &name("ffn_gate.weight"), &[c.hidden_dim, dim])?,
                w_up: matrix(&mut w, &name("ffn_up.weight"), &[c.hidden_dim, dim])?,
                w_down: matrix(&mut w, &name("ffn_down.weight"), &[dim, c.hidden_dim])?,
                keys: Vec::new(),
                values: Vec::new(),
            });
        }
        let final_norm = w.take("output_norm.weight", &[dim])?.into_vec()?;
        let weight_bytes = bytes + (2 * c.n_layers + 1) * dim * 4;
        Ok(Self { config, embedding, lm_head, blocks, final_norm, cached_len: 0, weight_bytes })
    }

    /// How many positions the KV cache holds.
    pub fn cached_len(&self) -> usize {
        self.cached_len
    }

    /// Forgets cached positions from `len` on (chat: keep the common prefix).
    pub fn truncate_cache(&mut self, len: usize) -> Result<()> {
        if len < self.cached_len {
            self.cut_caches(len);
        }
        Ok(())
    }

    pub fn clear_cache(&mut self) {
        self.cut_caches(0);
    }

    fn cut_caches(&mut self, len: usize) {
        let kv_dim = self.config.n_kv_heads * self.config.head_dim();
        for b in &mut self.blocks {
            b.keys.truncate(len * kv_dim);
            b.values.truncate(len * kv_dim);
        }
        self.cached_len = len;
    }

    /// How the weights are stored ("Q8_0", "BF16", ...): what decides which
    /// kernels a forward pass runs.
    pub fn weight_kinds(&self) -> std::collections::BTreeSet<String> {
        let mut kinds: std::collections::BTreeSet<String> = [self.embedding.kind()].into();
        kinds.extend(self.lm_head.iter().map(Matrix::kind));
        for b in &self.blocks {
            kinds.extend([&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down].map(Matrix::kind));
        }
        kinds
    }

    /// Runs `tokens` at positions `cached_len..cached_len + tokens.len()`, extends
    /// the KV cache, and returns the logits (vocab) of the last position.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.forward_from(tokens, tokens.len().saturating_sub(1))
    }

    /// Like [`forward`](Self::forward), with the logits of every position:
    /// `tokens.len()` rows of `vocab` values.
    pub fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.forward_from(tokens, 0)
    }

    /// The logits of positions `first..` of `tokens`; on an error the cache is as before.
    fn forward_from(&mut self, tokens: &[u32], first: usize) -> Result<Vec<f32>> {
        let pos = self.cached_len;
        let result = self.layers(tokens, first);
        match &result {
            Ok(_) => self.cached_len = pos + tokens.len(),
            Err(_) => self.cut_caches(pos),
        }
        result
    }

    fn layers(&mut self, tokens: &[u32], first: usize) -> Result<Vec<f32>> {
        let (t, pos) = (tokens.len(), self.cached_len);
        let c = self.config.clone();
        if t == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if pos + t > c.context_length {
            return Err(EngineError::PromptTooLong { prompt_tokens: pos + t, context: c.context_length });
        }
        let (dim, hd, nh, nkv) = (c.dim, c.head_dim(), c.n_heads, c.n_kv_heads);
        let eps = c.rms_norm_eps as f32;
        let mut x = vec![0f32; t * dim]; // the residual stream, one row per token
        for (row, &id) in x.chunks_exact_mut(dim).zip(tokens) {
            if id as usize >= self.embedding.rows {
                return Err(EngineError::Settings(format!("token id {id} is outside the model's vocabulary of {}", self.embedding.rows)));
            }
            self.embedding.row(id as usize, row)?;
        }
        let rope = Rope::new(&c, pos, t);
        for b in &mut self.blocks {
            // Attention: x += wo · softmax(q kᵀ / √hd, causal) v
            let h = rms_norm(&x, &b.attn_norm, eps);
            let [mut q, mut k, v]: [Vec<f32>; 3] = products(matmul_many(&[&b.wq, &b.wk, &b.wv], &h)?);
            rope.rotate(&mut q, nh * hd);
            rope.rotate(&mut k, nkv * hd);
            b.keys.extend_from_slice(&k);
            b.values.extend_from_slice(&v);
            let y = attention(&q, &b.keys, &b.values, pos, (nh, nkv, hd));
            add(&mut x, &b.wo.matmul(&y)?);
            // Feed-forward (SwiGLU): x += w_down · (silu(w_gate · h) * (w_up · h))
            let h = rms_norm(&x, &b.ffn_norm, eps);
            let [mut gate, up]: [Vec<f32>; 2] = products(matmul_many(&[&b.w_gate, &b.w_up], &h)?);
            kernels::silu_mul(&mut gate, &up);
            add(&mut x, &b.w_down.matmul(&gate)?);
        }
        let h = rms_norm(&x[first * dim..], &self.final_norm, eps);
        let logits = self.lm_head.as_ref().unwrap_or(&self.embedding).matmul(&h)?;
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(EngineError::Settings("the model computed a logit that is not a number (NaN or infinite): its weights or settings are broken".into()));
        }
        Ok(logits)
    }
}

/// The products of `matmul_many` as an array (it returns one per matrix).
fn products<const N: usize>(products: Vec<Vec<f32>>) -> [Vec<f32>; N] {
    products.try_into().unwrap_or_else(|_| unreachable!("one product per matrix"))
}

/// x += y, element by element.
fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a = *a + b;
    }
}

/// Each row of `x` (rows of `w.len()` values) divided by its root mean square, times `w`.
fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(w.len()) {
        let mut sum = 0f32;
        for v in row {
            sum = sum + v * v;
        }
        let rms = (sum / w.len() as f32 + eps).sqrt();
        out.extend(row.iter().zip(w).map(|(v, w)| v / rms * w));
    }
    out
}

/// Rotary position embedding for positions `pos..pos + t`, interleaved pairs
/// (the GGUF layout): computed per call, so no table grows with the context.
struct Rope {
    half: usize,
    cos: Vec<f32>, // (t, head_dim / 2)
    sin: Vec<f32>,
}

impl Rope {
    fn new(c: &Config, pos: usize, t: usize) -> Self {
        let hd = c.head_dim();
        let inv_freq: Vec<f32> = (0..hd).step_by(2).map(|i| 1.0 / libm::powf(c.rope_theta, i as f32 / hd as f32)).collect();
        let angles: Vec<f32> = (pos..pos + t).flat_map(|p| inv_freq.iter().map(move |f| p as f32 * f)).collect();
        Self { half: hd / 2, cos: angles.iter().map(|&a| libm::cosf(a)).collect(), sin: angles.iter().map(|&a| libm::sinf(a)).collect() }
    }

    /// Rotates each head of each row of `x` (rows of `width` values).
    fn rotate(&self, x: &mut [f32], width: usize) {
        for (i, row) in x.chunks_exact_mut(width).enumerate() {
            let (cos, sin) = (&self.cos[i * self.half..][..self.half], &self.sin[i * self.half..][..self.half]);
            for head in row.chunks_exact_mut(2 * self.half) {
                for (j, pair) in head.chunks_exact_mut(2).enumerate() {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * cos[j] - b * sin[j];
                    pair[1] = a * sin[j] + b * cos[j];
                }
            }
        }
    }
}

/// Causal attention of the `t` query rows at positions `pos..pos + t` over the
/// cached keys and values of positions `0..=` each query's own. Masked keys are
/// skipped rather than added as -inf, so a position sums the same terms in the
/// same order however the cache was filled.
fn attention(q: &[f32], keys: &[f32], values: &[f32], pos: usize, (nh, nkv, hd): (usize, usize, usize)) -> Vec<f32> {
    let kv_dim = nkv * hd;
    let group = nh / nkv;
    let scale = (hd as f32).sqrt();
    let mut out = vec![0f32; q.len()];
    let rows = q.len() / (nh * hd);
    // Each (query row, head) is one piece, computed alone as it would be in
    // order; pieces may go to several threads when there are enough keys.
    let worth_it = rows * nh * (pos + rows) >= 512;
    kernels::batch::for_each_chunk_mut(&mut out, hd, worth_it, |piece, oh| {
        let (i, h) = (piece / nh, piece % nh);
        let qh = &q[piece * hd..][..hd];
        // This head's key and value of position j: `[j * kv_dim..][..hd]` of these.
        let (kh, vh) = (&keys[(h / group) * hd..], &values[(h / group) * hd..]);
        let mut scores = vec![0f32; pos + i + 1];
        kernels::dot_f32_rows(qh, kh, kv_dim, &mut scores);
        for s in scores.iter_mut() {
            *s = *s / scale;
        }
        softmax(&mut scores);
        kernels::axpy_rows(&scores, vh, kv_dim, oh);
    });
    out
}

fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = *v - max;
    }
    kernels::exp_in_place(x);
    let mut sum = 0f32;
    for v in x.iter() {
        sum = sum + *v;
    }
    for v in x.iter_mut() {
        *v = *v / sum;
    }
}
