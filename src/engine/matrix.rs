//! A weight matrix in the form it is multiplied in, and `x · Wᵀ` for any
//! number of activation rows.
//!
//! Every output element is one call of a dot product from [`super::kernels`]
//! with a fixed reduction order, whether one row (decoding) or many (a prompt)
//! are multiplied: batching only shares the weights' trip through the cache,
//! never changes a row's sums. So a position's logits are the same bits in
//! any batch ("one prompt, one answer").

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QTensor};

use super::error::{EngineError, Result};
use super::kernels::batch;
use super::kernels::{self, Half, Q8_BLOCK};

/// (rows, cols) = (outputs, inputs), like nn.Linear's weight.
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    data: Data,
}

enum Data {
    F32(Vec<f32>),
    /// f16 or bf16 bits, widened exactly inside the dot product.
    Half(Half, Vec<u16>),
    /// ggml Q8_0: 32 quants per block with one scale; activations are
    /// quantized the same way per row (as llama.cpp does), integer sums.
    /// Quants in the kernels' layout (`kernels::q8_weights`: rows in fours,
    /// interleaved), scales in order.
    Q8 { q: Vec<i8>, d: Vec<f32> },
    /// Other ggml blocks as the file stores them (Q4_0, Q4_1, K-quants...):
    /// a few rows at a time dequantized by candle, then f32 dot products.
    Blocks { dtype: GgmlDType, bytes: Vec<u8> },
}

impl Matrix {
    pub fn f32(rows: usize, cols: usize, w: Vec<f32>) -> Self {
        Self { rows, cols, data: Data::F32(w) }
    }

    pub fn half(kind: Half, rows: usize, cols: usize, bits: Vec<u16>) -> Self {
        Self { rows, cols, data: Data::Half(kind, bits) }
    }

    /// Quantizes f32 weights to Q8_0 (ggml's `quantize_row_q8_0`, row by row).
    pub fn q8_from_f32(rows: usize, cols: usize, w: &[f32], name: &str) -> Result<Self> {
        check_blocks(cols, Q8_BLOCK, name)?;
        let mut q = Vec::with_capacity(kernels::q8_weights_len(w.len(), cols));
        q.resize(w.len(), 0i8);
        let mut d = vec![0f32; w.len() / Q8_BLOCK];
        kernels::quantize_q8(w, &mut q, &mut d);
        kernels::q8_weights_in_place(&mut q, cols);
        Ok(Self { rows, cols, data: Data::Q8 { q, d } })
    }

    /// Takes a GGUF tensor's blocks as they are (Q8_0 split into quants and scales).
    pub fn from_blocks(q: &QTensor, name: &str) -> Result<Self> {
        let (rows, cols) = q.shape().dims2()?;
        let dtype = q.dtype();
        check_blocks(cols, dtype.block_size(), name)?;
        let bytes = q.data()?;
        if dtype != GgmlDType::Q8_0 {
            return Ok(Self { rows, cols, data: Data::Blocks { dtype, bytes: bytes.into_owned() } });
        }
        // ggml's block_q8_0: an f16 scale, then 32 quants.
        let blocks = bytes.chunks_exact(2 + Q8_BLOCK);
        let d = blocks.clone().map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        let mut q = Vec::with_capacity(kernels::q8_weights_len(rows * cols, cols));
        q.extend(blocks.flat_map(|b| b[2..].iter().map(|&v| v as i8)));
        kernels::q8_weights_in_place(&mut q, cols);
        Ok(Self { rows, cols, data: Data::Q8 { q, d } })
    }

    /// Bytes the weights take in memory.
    pub fn bytes(&self) -> usize {
        match &self.data {
            Data::F32(w) => w.len() * 4,
            Data::Half(_, w) => w.len() * 2,
            Data::Q8 { q, d } => q.len() + d.len() * 4,
            Data::Blocks { bytes, .. } => bytes.len(),
        }
    }

    /// How the weights are held ("F32", "F16", "BF16", "Q8_0", "Q4_1", ...).
    pub fn kind(&self) -> String {
        match &self.data {
            Data::F32(_) => "F32".into(),
            Data::Half(Half::F16, _) => "F16".into(),
            Data::Half(Half::Bf16, _) => "BF16".into(),
            Data::Q8 { .. } => "Q8_0".into(),
            Data::Blocks { dtype, .. } => format!("{dtype:?}"),
        }
    }

    /// Row `i` as f32 (an embedding lookup).
    pub fn row(&self, i: usize, out: &mut [f32]) -> Result<()> {
        let k = self.cols;
        match &self.data {
            Data::F32(w) => out.copy_from_slice(&w[i * k..][..k]),
            Data::Half(kind, w) => kernels::widen(*kind, &w[i * k..][..k], out),
            Data::Q8 { q, d } => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = q[kernels::q8_weight_position(i, j, k)] as f32 * d[(i * k + j) / Q8_BLOCK];
                }
            }
            Data::Blocks { dtype, bytes } => out.copy_from_slice(&dequantize_rows(*dtype, bytes, k, i..i + 1)?),
        }
        Ok(())
    }

    /// `x · Wᵀ` for `x` = m rows of `cols` values: m rows of `rows` values.
    pub fn matmul(&self, x: &[f32]) -> Result<Vec<f32>> {
        let (n, k) = (self.rows, self.cols);
        let m = x.len() / k;
        let mut out = vec![0f32; m * n];
        if m == 0 {
            return Ok(out);
        }
        let xr = |r: usize| &x[r * k..][..k];
        match &self.data {
            Data::F32(w) => f32_rows(x, k, n, &mut out, |j0, j1| Ok(Cow::Borrowed(&w[j0 * k..j1 * k])))?,
            // A prompt: each tile of weight rows widened once for all rows. Same
            // bits as `dot_half` (widening is exact, the order is the same).
            Data::Half(kind, w) if m > 1 => f32_rows(x, k, n, &mut out, |j0, j1| {
                let mut wide = vec![0f32; (j1 - j0) * k];
                kernels::widen(*kind, &w[j0 * k..j1 * k], &mut wide);
                Ok(Cow::Owned(wide))
            })?,
            // One row (decoding): widened on the fly, tiles shared out over
            // the threads as above. For f16, the row scaled once gives the
            // same bits (kernels::dot_f16_prescaled) faster.
            Data::Half(kind, w) => {
                let x = xr(0);
                let scaled = if *kind == Half::F16 { kernels::prescale_for_f16(x) } else { None };
                batch::for_each_tile(1, n, &mut out, |j0, j1, o, _stride, col0| {
                    for (j, wj) in (j0..j1).zip(w[j0 * k..j1 * k].chunks_exact(k)) {
                        o[j - col0] = match &scaled {
                            Some(s) => kernels::dot_f16_prescaled(s, wj),
                            None => kernels::dot_half(*kind, x, wj),
                        };
                    }
                });
            }
            Data::Q8 { q, d } => {
                batch::q8_matmul(&batch::Q8Rows::quantize(x, k), q, d, &mut out);
            }
            Data::Blocks { dtype, bytes } => f32_rows(x, k, n, &mut out, |j0, j1| dequantize_rows(*dtype, bytes, k, j0..j1).map(Cow::Owned))?,
        }
        Ok(out)
    }
}

/// `x · Wᵀ` for several matrices of the same input width (q, k and v; gate
/// and up): Q8_0 ones share one quantization of `x` and one parallel region
/// (fewer fork/joins a token); the bits are each product's alone.
pub fn matmul_many(matrices: &[&Matrix], x: &[f32]) -> Result<Vec<Vec<f32>>> {
    let k = matrices.first().map_or(0, |w| w.cols);
    let q8: Option<Vec<(&[i8], &[f32])>> = matrices
        .iter()
        .map(|w| match &w.data {
            Data::Q8 { q, d } if w.cols == k => Some((q.as_slice(), d.as_slice())),
            _ => None,
        })
        .collect();
    let m = if k == 0 { 0 } else { x.len() / k };
    match q8 {
        Some(weights) if m > 0 => {
            let mut outs: Vec<Vec<f32>> = matrices.iter().map(|w| vec![0f32; m * w.rows]).collect();
            let mut views: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
            batch::q8_matmul_many(&batch::Q8Rows::quantize(x, k), &weights, &mut views);
            Ok(outs)
        }
        _ => matrices.iter().map(|w| w.matmul(x)).collect(),
    }
}

/// `x · Wᵀ` with f32 weight rows, a tile at a time from `tile(j0, j1)` (the
/// rows as stored, widened or dequantized), tiles shared out over the
/// threads as the Q8_0 product's are.
fn f32_rows<'w>(x: &[f32], k: usize, n: usize, out: &mut [f32], tile: impl Fn(usize, usize) -> Result<Cow<'w, [f32]>> + Sync) -> Result<()> {
    let failed = std::sync::Mutex::new(None);
    batch::for_each_tile(x.len() / k, n, out, |j0, j1, o, stride, col0| match tile(j0, j1) {
        Ok(w) => batch::f32_tile(x, k, &w, j0, o, stride, col0),
        Err(e) => *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e),
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_blocks(cols: usize, block: usize, name: &str) -> Result<()> {
    match cols % block {
        0 => Ok(()),
        _ => Err(EngineError::BadTensor { name: name.into(), detail: format!("rows of {cols} values do not split into blocks of {block}") }),
    }
}

/// Rows `rows` of a matrix of ggml blocks, `cols` wide, as f32.
fn dequantize_rows(dtype: GgmlDType, bytes: &[u8], cols: usize, rows: std::ops::Range<usize>) -> Result<Vec<f32>> {
    let row_bytes = cols / dtype.block_size() * dtype.type_size();
    let part = &bytes[rows.start * row_bytes..rows.end * row_bytes];
    let values = dtype.from_data(Cow::Borrowed(part)).dequantize(rows.len() * cols)?;
    match values {
        candle_core::CpuStorage::F32(v) => Ok(v),
        _ => Err(EngineError::BadTensor { name: format!("{dtype:?} blocks"), detail: "did not dequantize to f32".into() }),
    }
}
