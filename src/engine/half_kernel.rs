//! Part of step 1 (the forward pass): 16-bit float weights (f16 or bf16)
//! times float32 activations.
//!
//! Written by hand because candle 0.11 has no fast path for it in wasm: its
//! f16 matmul rounds the activations to f16 and runs a scalar f16 gemm there
//! (2.5 tokens/s in the browser, against 31 for f32 weights). Here the
//! weights stay 16-bit in memory (half the bytes of f32) and are widened to
//! f32 in registers, 8 at a time with wasm SIMD, right before they are
//! multiplied; activations and sums stay f32. Widening is exact, so this
//! computes what f32 weights with the same values compute.
//!
//! - One to a few rows (decoding, short prompts): [`matmul`] reads each weight
//!   row once per activation row, widening on the fly ([`dot`]).
//! - Many rows (a prompt): the weight matrix is widened whole ([`widen`]) and
//!   handed to candle's f32 matmul, which re-uses each weight across rows.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

/// Activation rows from which the matrix is widened for candle's f32 matmul.
pub const WIDEN_MIN_ROWS: usize = 8;

/// Which 16-bit float the weight bits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// IEEE binary16: 5 exponent bits, 10 mantissa bits.
    F16,
    /// bfloat16: the top half of an f32 (8 exponent bits, 7 mantissa bits);
    /// what the official checkpoints store.
    Bf16,
}

impl Half {
    fn of(dtype: DType) -> Option<Self> {
        match dtype {
            DType::F16 => Some(Self::F16),
            DType::BF16 => Some(Self::Bf16),
            _ => None,
        }
    }
}

/// `x · wᵀ` for f32 `x` (.., k) and f16 or bf16 `w` (n, k): f32 (.., n).
pub fn matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let k = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    if rows >= WIDEN_MIN_ROWS {
        return x.broadcast_matmul(&widen_tensor(w)?.t()?);
    }
    x.contiguous()?.apply_op2_no_bwd(&w.contiguous()?, &RowsTimesHalf)
}

/// The 16-bit tensor `w` widened to f32 with [`widen`].
pub fn widen_tensor(w: &Tensor) -> candle_core::Result<Tensor> {
    w.contiguous()?.apply_op1_no_bwd(&Widen)
}

/// f16 bits -> f32, exact for every finite f16 (normal or subnormal).
///
/// Moving the f16 exponent and mantissa into f32 position gives the number
/// times 2^-112 (f16's exponent bias is 15, f32's 127); one multiply by 2^112
/// fixes it, subnormals included. Inf/NaN would come out finite (weights
/// have none).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    f16_times_two_pow_minus_112(h) * TWO_POW_112
}

/// f16 bits moved into f32 position, sign included, without the re-bias: the
/// value times 2^-112, exactly (f32 has the exponent range for it).
#[inline(always)]
fn f16_times_two_pow_minus_112(h: u16) -> f32 {
    f32::from_bits((((h & 0x7fff) as u32) << 13) | (((h & 0x8000) as u32) << 16))
}

/// bf16 bits -> f32: they are its top 16 bits.
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

const TWO_POW_112: f32 = f32::from_bits((112 + 127) << 23);

#[inline(always)]
fn to_f32(kind: Half, h: u16) -> f32 {
    match kind {
        Half::F16 => f16_to_f32(h),
        Half::Bf16 => bf16_to_f32(h),
    }
}

/// Σ x[i] · w[i], `w` widened on the fly. Portable version: eight running
/// sums (the compiler vectorises independent sums, not one long chain).
pub fn dot_portable(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    match kind {
        Half::F16 => dot_portable_with(x, w, f16_to_f32),
        Half::Bf16 => dot_portable_with(x, w, bf16_to_f32),
    }
}

/// [`dot_f16_prescaled`], portable version.
pub fn dot_f16_prescaled_portable(x_scaled: &[f32], w: &[u16]) -> f32 {
    dot_portable_with(x_scaled, w, f16_times_two_pow_minus_112)
}

#[inline(always)]
fn dot_portable_with(x: &[f32], w: &[u16], to_f32: impl Fn(u16) -> f32) -> f32 {
    assert_eq!(x.len(), w.len());
    let mut sums = [0f32; 8];
    let (xc, wc) = (x.chunks_exact(8), w.chunks_exact(8));
    let (x_tail, w_tail) = (xc.remainder(), wc.remainder());
    for (xs, ws) in xc.zip(wc) {
        for l in 0..8 {
            sums[l] += xs[l] * to_f32(ws[l]);
        }
    }
    let tail: f32 = x_tail.iter().zip(w_tail).map(|(&a, &b)| a * to_f32(b)).sum();
    sums.iter().sum::<f32>() + tail
}

/// Widens 16-bit float bits to f32, portable version.
pub fn widen_portable(kind: Half, w: &[u16], out: &mut [f32]) {
    assert_eq!(w.len(), out.len());
    for (o, &h) in out.iter_mut().zip(w) {
        *o = to_f32(kind, h);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::Half;
    use core::arch::wasm32::*;

    /// Eight 16-bit floats (one v128) -> two f32x4.
    ///
    /// Interleaving with zeros puts each 16-bit value in the top half of a
    /// 32-bit lane: for bf16 that is the f32 already. (Written as a 16-bit
    /// interleave, which V8 compiles to one `punpcklwd`; the same shuffle
    /// spelled with bytes, or zero-extend + shift, made decoding 1.4-2.5x
    /// slower in Chromium.) For f16 (sign, 5 exponent, 10 mantissa bits at
    /// the top), an arithmetic shift right by 3 puts exponent and mantissa
    /// where f32 has them, the mask clears the 3 sign copies the shift left in
    /// the exponent, and `* 2^112` re-biases the exponent (see `f16_to_f32`;
    /// the sign survives the multiply). Without `REBIAS`, f16 comes out times
    /// 2^-112 (for activations scaled by 2^112: [`super::dot_f16_prescaled`]).
    #[inline(always)]
    fn widen8<const REBIAS: bool>(kind: Half, h: v128) -> (v128, v128) {
        let zero = u32x4_splat(0);
        let lo = i16x8_shuffle::<8, 0, 9, 1, 10, 2, 11, 3>(h, zero);
        let hi = i16x8_shuffle::<12, 4, 13, 5, 14, 6, 15, 7>(h, zero);
        match kind {
            Half::Bf16 => (lo, hi),
            Half::F16 => {
                let f = |v: v128| {
                    let moved = v128_and(i32x4_shr(v, 3), u32x4_splat(0x8fff_ffff));
                    if REBIAS { f32x4_mul(moved, f32x4_splat(super::TWO_POW_112)) } else { moved }
                };
                (f(lo), f(hi))
            }
        }
    }

    #[inline(always)]
    fn dot_kind<const REBIAS: bool>(kind: Half, x: &[f32], w: &[u16]) -> f32 {
        assert_eq!(x.len(), w.len());
        let n16 = x.len() / 16 * 16;
        let (mut a0, mut a1, mut a2, mut a3) = (f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0));
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let mut i = 0;
        while i < n16 {
            // SAFETY: i + 16 <= len for both slices; wasm loads need no alignment.
            unsafe {
                let (w0, w1) = widen8::<REBIAS>(kind, v128_load(wp.add(i) as *const v128));
                let (w2, w3) = widen8::<REBIAS>(kind, v128_load(wp.add(i + 8) as *const v128));
                a0 = f32x4_add(a0, f32x4_mul(w0, v128_load(xp.add(i) as *const v128)));
                a1 = f32x4_add(a1, f32x4_mul(w1, v128_load(xp.add(i + 4) as *const v128)));
                a2 = f32x4_add(a2, f32x4_mul(w2, v128_load(xp.add(i + 8) as *const v128)));
                a3 = f32x4_add(a3, f32x4_mul(w3, v128_load(xp.add(i + 12) as *const v128)));
            }
            i += 16;
        }
        let s = f32x4_add(f32x4_add(a0, a1), f32x4_add(a2, a3));
        let lanes = f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s) + f32x4_extract_lane::<2>(s) + f32x4_extract_lane::<3>(s);
        let tail = match (kind, REBIAS) {
            (Half::F16, false) => super::dot_f16_prescaled_portable(&x[n16..], &w[n16..]),
            _ => super::dot_portable(kind, &x[n16..], &w[n16..]),
        };
        lanes + tail
    }

    /// One copy of the loop per format (the format test is hoisted out).
    pub fn dot(kind: Half, x: &[f32], w: &[u16]) -> f32 {
        match kind {
            Half::F16 => dot_kind::<true>(Half::F16, x, w),
            Half::Bf16 => dot_kind::<true>(Half::Bf16, x, w),
        }
    }

    pub fn dot_f16_prescaled(x_scaled: &[f32], w: &[u16]) -> f32 {
        dot_kind::<false>(Half::F16, x_scaled, w)
    }

    pub fn widen(kind: Half, w: &[u16], out: &mut [f32]) {
        assert_eq!(w.len(), out.len());
        let n8 = w.len() / 8 * 8;
        let (wp, op) = (w.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= len for both slices; wasm stores need no alignment.
            unsafe {
                let (lo, hi) = widen8::<true>(kind, v128_load(wp.add(i) as *const v128));
                v128_store(op.add(i) as *mut v128, lo);
                v128_store(op.add(i + 4) as *mut v128, hi);
            }
            i += 8;
        }
        super::widen_portable(kind, &w[n8..], &mut out[n8..]);
    }
}

/// Σ x[i] · w[i] with 16-bit `w`: wasm SIMD in the browser, portable elsewhere.
pub fn dot(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot(kind, x, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_portable(kind, x, w);
}

/// Σ x[i] · w[i] for f16 `w`, given `x_scaled` = x · 2^112 ([`prescale_for_f16`]).
///
/// Why: the f16 -> f32 re-bias is a multiply by 2^112 per weight; done once
/// per activation instead, the loop is 4 operations shorter per 16 weights.
/// Same result bit for bit: x · 2^112 and w · 2^-112 are both exact, so each
/// product is the exact x · w rounded once, as in [`dot`].
pub fn dot_f16_prescaled(x_scaled: &[f32], w: &[u16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot_f16_prescaled(x_scaled, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_f16_prescaled_portable(x_scaled, w);
}

/// `x · 2^112` for [`dot_f16_prescaled`], when every element stays finite and
/// exact (|x| < 2^16; a NaN or a larger value gives `None`: use [`dot`]).
pub fn prescale_for_f16(x: &[f32]) -> Option<Vec<f32>> {
    x.iter().all(|v| v.abs() < 65536.0).then(|| x.iter().map(|v| v * TWO_POW_112).collect())
}

/// 16-bit float bits -> f32: wasm SIMD in the browser, portable elsewhere.
pub fn widen(kind: Half, w: &[u16], out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::widen(kind, w, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return widen_portable(kind, w, out);
}

/// The elements of a contiguous f16 or bf16 CPU tensor, as bits.
fn half_bits<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<(Half, &'a [u16])> {
    use half::slice::HalfFloatSliceExt;
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("half kernel: weights must be contiguous")
    };
    match s {
        CpuStorage::F16(v) => Ok((Half::F16, v[a..b].reinterpret_cast())),
        CpuStorage::BF16(v) => Ok((Half::Bf16, v[a..b].reinterpret_cast())),
        other => {
            let dtype = candle_core::backend::BackendStorage::dtype(other);
            candle_core::bail!("half kernel: weights are {dtype:?}, expected f16 or bf16")
        }
    }
}

/// `x (.., k) f32` · `w (n, k) f16/bf16`ᵀ, one dot product per output.
struct RowsTimesHalf;

impl CustomOp2 for RowsTimesHalf {
    fn name(&self) -> &'static str {
        "half-rows-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => &v[a..b],
            _ => candle_core::bail!("half kernel: activations must be contiguous f32"),
        };
        let (kind, w) = half_bits(s2, l2)?;
        let (n, k) = l2.shape().dims2()?;
        let mut dims = l1.shape().dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("half kernel: activations {dims:?} do not end in the weights' width {k}");
        }
        *dims.last_mut().unwrap() = n;
        let mut out = Vec::with_capacity(x.len() / k * n);
        for xs in x.chunks_exact(k) {
            let scaled = if kind == Half::F16 { prescale_for_f16(xs) } else { None };
            match scaled {
                Some(scaled) => out.extend(w.chunks_exact(k).map(|row| dot_f16_prescaled(&scaled, row))),
                None => out.extend(w.chunks_exact(k).map(|row| dot(kind, xs, row))),
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// A 16-bit float tensor widened to f32 (any shape, contiguous).
struct Widen;

impl CustomOp1 for Widen {
    fn name(&self) -> &'static str {
        "half-widen"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (kind, w) = half_bits(s, l)?;
        let mut out = vec![0f32; w.len()];
        widen(kind, w, &mut out);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Whether [`matmul`] takes weights of this dtype.
pub fn handles(dtype: DType) -> bool {
    Half::of(dtype).is_some()
}
