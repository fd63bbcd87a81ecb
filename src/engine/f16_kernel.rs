//! Part of step 1 (the forward pass): float16 weights times float32 activations.
//!
//! Written by hand because candle 0.11 has no fast path for it in wasm: its
//! f16 matmul rounds the activations to f16 and runs a scalar f16 gemm there
//! (2.5 tokens/s in the browser, against 31 for f32 weights). Here the
//! weights stay f16 in memory (half the bytes of f32) and are widened to f32
//! in registers, 8 at a time with wasm SIMD, right before they are multiplied;
//! activations and sums stay f32, so this is at least as exact as candle's path.
//!
//! - One to a few rows (decoding, short prompts): [`matmul`] reads each weight
//!   row once per activation row, widening on the fly ([`dot`]).
//! - Many rows (a prompt): the weight matrix is widened whole ([`widen`]) and
//!   handed to candle's f32 matmul, which re-uses each weight across rows.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

/// Activation rows from which the matrix is widened for candle's f32 matmul.
pub const WIDEN_MIN_ROWS: usize = 8;

/// `x · wᵀ` for f32 `x` (.., k) and f16 `w` (n, k): f32 (.., n).
pub fn matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let k = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    if rows >= WIDEN_MIN_ROWS {
        let w32 = widen_tensor(w)?;
        return x.broadcast_matmul(&w32.t()?);
    }
    x.contiguous()?.apply_op2_no_bwd(&w.contiguous()?, &RowsTimesF16)
}

/// f16 bits -> f32, exact for every finite f16 (normal or subnormal).
///
/// Moving the f16 exponent and mantissa into f32 position gives the number
/// times 2^-112 (f16's exponent bias is 15, f32's 127); one multiply by 2^112
/// fixes it, subnormals included. Inf/NaN would come out finite (weights
/// have none).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let magnitude = f32::from_bits(((h & 0x7fff) as u32) << 13) * TWO_POW_112;
    f32::from_bits(magnitude.to_bits() | (((h & 0x8000) as u32) << 16))
}

const TWO_POW_112: f32 = f32::from_bits((112 + 127) << 23);

/// Σ x[i] · w[i], the f16 `w` widened on the fly. Portable version: eight
/// running sums (the compiler vectorises independent sums, not one long chain).
pub fn dot_portable(x: &[f32], w: &[u16]) -> f32 {
    assert_eq!(x.len(), w.len());
    let mut sums = [0f32; 8];
    let (xc, wc) = (x.chunks_exact(8), w.chunks_exact(8));
    let (x_tail, w_tail) = (xc.remainder(), wc.remainder());
    for (xs, ws) in xc.zip(wc) {
        for l in 0..8 {
            sums[l] += xs[l] * f16_to_f32(ws[l]);
        }
    }
    let tail: f32 = x_tail.iter().zip(w_tail).map(|(&a, &b)| a * f16_to_f32(b)).sum();
    sums.iter().sum::<f32>() + tail
}

/// Widens f16 bits to f32, portable version.
pub fn widen_portable(w: &[u16], out: &mut [f32]) {
    for (o, &h) in out.iter_mut().zip(w) {
        *o = f16_to_f32(h);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    /// Eight f16 (one v128) -> two f32x4, with the same bit trick as `f16_to_f32`.
    #[inline(always)]
    fn widen8(h: v128) -> (v128, v128) {
        #[inline(always)]
        fn widen4(u: v128) -> v128 {
            let sign = i32x4_shl(v128_and(u, u32x4_splat(0x8000)), 16);
            let magnitude = i32x4_shl(v128_and(u, u32x4_splat(0x7fff)), 13);
            v128_or(f32x4_mul(magnitude, f32x4_splat(super::TWO_POW_112)), sign)
        }
        (widen4(u32x4_extend_low_u16x8(h)), widen4(u32x4_extend_high_u16x8(h)))
    }

    pub fn dot(x: &[f32], w: &[u16]) -> f32 {
        assert_eq!(x.len(), w.len());
        let n16 = x.len() / 16 * 16;
        let (mut a0, mut a1, mut a2, mut a3) = (f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0));
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let mut i = 0;
        while i < n16 {
            // SAFETY: i + 16 <= len for both slices; wasm loads need no alignment.
            unsafe {
                let (w0, w1) = widen8(v128_load(wp.add(i) as *const v128));
                let (w2, w3) = widen8(v128_load(wp.add(i + 8) as *const v128));
                a0 = f32x4_add(a0, f32x4_mul(w0, v128_load(xp.add(i) as *const v128)));
                a1 = f32x4_add(a1, f32x4_mul(w1, v128_load(xp.add(i + 4) as *const v128)));
                a2 = f32x4_add(a2, f32x4_mul(w2, v128_load(xp.add(i + 8) as *const v128)));
                a3 = f32x4_add(a3, f32x4_mul(w3, v128_load(xp.add(i + 12) as *const v128)));
            }
            i += 16;
        }
        let s = f32x4_add(f32x4_add(a0, a1), f32x4_add(a2, a3));
        let lanes = f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s) + f32x4_extract_lane::<2>(s) + f32x4_extract_lane::<3>(s);
        lanes + super::dot_portable(&x[n16..], &w[n16..])
    }

    pub fn widen(w: &[u16], out: &mut [f32]) {
        assert_eq!(w.len(), out.len());
        let n8 = w.len() / 8 * 8;
        let (wp, op) = (w.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= len for both slices; wasm stores need no alignment.
            unsafe {
                let (lo, hi) = widen8(v128_load(wp.add(i) as *const v128));
                v128_store(op.add(i) as *mut v128, lo);
                v128_store(op.add(i + 4) as *mut v128, hi);
            }
            i += 8;
        }
        super::widen_portable(&w[n8..], &mut out[n8..]);
    }
}

/// Σ x[i] · w[i] with f16 `w`: wasm SIMD in the browser, portable elsewhere.
pub fn dot(x: &[f32], w: &[u16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot(x, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_portable(x, w);
}

/// f16 bits -> f32: wasm SIMD in the browser, portable elsewhere.
pub fn widen(w: &[u16], out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::widen(w, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return widen_portable(w, out);
}

/// The f16 elements of a contiguous CPU tensor, as bits.
fn f16_bits<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [u16]> {
    use half::slice::HalfFloatSliceExt;
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F16(v), Some((a, b))) => Ok(v[a..b].reinterpret_cast()),
        (CpuStorage::F16(_), None) => candle_core::bail!("f16 kernel: weights must be contiguous"),
        (other, _) => candle_core::bail!("f16 kernel: weights are {:?}, expected f16", candle_core::backend::BackendStorage::dtype(other)),
    }
}

/// `x (.., k) f32` · `w (n, k) f16`ᵀ, one dot product per output.
struct RowsTimesF16;

impl CustomOp2 for RowsTimesF16 {
    fn name(&self) -> &'static str {
        "f16-rows-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => &v[a..b],
            _ => candle_core::bail!("f16 kernel: activations must be contiguous f32"),
        };
        let w = f16_bits(s2, l2)?;
        let (n, k) = l2.shape().dims2()?;
        let mut dims = l1.shape().dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("f16 kernel: activations {:?} do not end in the weights' width {k}", dims);
        }
        *dims.last_mut().unwrap() = n;
        let mut out = Vec::with_capacity(x.len() / k * n);
        for xs in x.chunks_exact(k) {
            out.extend(w.chunks_exact(k).map(|row| dot(xs, row)));
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// An f16 tensor widened to f32 (any shape, contiguous).
struct Widen;

impl CustomOp1 for Widen {
    fn name(&self) -> &'static str {
        "f16-widen"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = f16_bits(s, l)?;
        let mut out = vec![0f32; w.len()];
        widen(w, &mut out);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// The f16 tensor `w` (contiguous) widened to f32 with [`widen`].
pub fn widen_tensor(w: &Tensor) -> candle_core::Result<Tensor> {
    if w.dtype() != DType::F16 {
        candle_core::bail!("f16 kernel: expected f16, got {:?}", w.dtype());
    }
    w.contiguous()?.apply_op1_no_bwd(&Widen)
}
