#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]
//! The dot products every matrix multiply of the forward pass is made of.
//!
//! Why by hand: "one prompt, one answer". The logits of a position must not
//! depend on how many positions are read together or on the CPU. Library
//! matmuls (candle's gemm, its quantized kernels) pick a reduction order by
//! matrix shape and by CPU features at run time (AVX2 vs AVX-512 FMA, a
//! one-row path vs a tiled one), so the same row summed in a batch and alone
//! rounds differently and near-ties flip. Here each output element is one call
//! of one of these functions, whatever the batch, with one fixed order:
//!
//! - **Floats** (`dot_f32`, `dot_half`): 16 running sums, lane `l` takes the
//!   elements `i ≡ l (mod 16)`; then lanes `l, l+4, l+8, l+12` are added as
//!   `(a + b) + (c + d)`, those four left to right, and the tail (k mod 16
//!   elements, in order) last. A multiply and an add, never fused.
//! - **Q8_0 blocks** (`dot_q8_tile`): per block of 32, the exact integer sum,
//!   turned to f32 and times the product of the two blocks' scales, is added
//!   to running sum `b mod 4` (block `b`). The blocks past the last whole
//!   group of four come first (a partial group adds `+0.0` to the sums it has
//!   no block for), then the whole groups in order; the four sums as
//!   `(a + b) + (c + d)`. Quants sit in the layout of `q8.rs`, so
//!   that one i16x8 dot product serves four blocks: one float update per
//!   four blocks instead of four per block (prompts read 1.4-1.7x faster).
//!
//! The wasm SIMD versions (the browser) do exactly the portable versions'
//! operations in exactly their order, so native and wasm give the same bits;
//! tests/web_kernel.rs checks SIMD against portable in Chromium.
//!
//! A crate of its own so the browser worker builds it at opt-level 3 (the
//! rest of the worker is at "z" for size): at "z" the same code read prompts
//! 1.9x slower in wasm (BENCHMARKS.md).

/// Which 16-bit float the weight bits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// IEEE binary16: 5 exponent bits, 10 mantissa bits.
    F16,
    /// bfloat16: the top half of an f32; what the official checkpoints store.
    Bf16,
}

/// Elements per Q8_0 block (ggml's `QK8_0`).
pub const Q8_BLOCK: usize = 32;

/// f16 bits -> f32, exact for every finite f16 (normal or subnormal).
///
/// Moving the f16 exponent and mantissa into f32 position gives the number
/// times 2^-112 (f16's exponent bias is 15, f32's 127); one multiply by 2^112
/// fixes it, subnormals included. Inf/NaN would come out finite.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    f16_times_two_pow_minus_112(h) * TWO_POW_112
}

/// f16 bits moved into f32 position without the re-bias: the value times 2^-112, exactly.
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
fn half_to_f32(kind: Half, h: u16) -> f32 {
    match kind {
        Half::F16 => f16_to_f32(h),
        Half::Bf16 => bf16_to_f32(h),
    }
}

/// The fixed float order (module doc), on 16 lane sums and a tail.
#[inline(always)]
fn finish16(acc: &[f32; 16], tail: f32) -> f32 {
    let s = |l: usize| (acc[l] + acc[l + 4]) + (acc[l + 8] + acc[l + 12]);
    (((s(0) + s(1)) + s(2)) + s(3)) + tail
}

#[inline(always)]
fn dot16_portable<W: Copy>(x: &[f32], w: &[W], to_f32: impl Fn(W) -> f32) -> f32 {
    assert_eq!(x.len(), w.len());
    let mut acc = [0f32; 16];
    let (xc, wc) = (x.chunks_exact(16), w.chunks_exact(16));
    let (x_tail, w_tail) = (xc.remainder(), wc.remainder());
    for (xs, ws) in xc.zip(wc) {
        for l in 0..16 {
            acc[l] = acc[l] + xs[l] * to_f32(ws[l]);
        }
    }
    finish16(&acc, dot16_tail(x_tail, w_tail, to_f32))
}

/// The last k mod 16 products, summed in order (the fixed order's tail).
#[inline(always)]
fn dot16_tail<W: Copy>(x: &[f32], w: &[W], to_f32: impl Fn(W) -> f32) -> f32 {
    let mut tail = 0f32;
    for (&a, &b) in x.iter().zip(w) {
        tail = tail + a * to_f32(b);
    }
    tail
}

/// Σ x[i] · w[i], f32 weights, portable version.
pub fn dot_f32_portable(x: &[f32], w: &[f32]) -> f32 {
    dot16_portable(x, w, |v| v)
}

/// Σ x[i] · w[i], 16-bit weights widened on the fly, portable version.
pub fn dot_half_portable(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    match kind {
        Half::F16 => dot16_portable(x, w, f16_to_f32),
        Half::Bf16 => dot16_portable(x, w, bf16_to_f32),
    }
}

/// [`dot_f16_prescaled`], portable version.
pub fn dot_f16_prescaled_portable(x_scaled: &[f32], w: &[u16]) -> f32 {
    dot16_portable(x_scaled, w, f16_times_two_pow_minus_112)
}

/// o[i] += a · v[i] (attention's weighted sum of values), portable version.
pub fn axpy_portable(a: f32, v: &[f32], o: &mut [f32]) {
    assert_eq!(v.len(), o.len());
    for (o, &v) in o.iter_mut().zip(v) {
        *o = *o + a * v;
    }
}

/// Widens 16-bit float bits to f32, portable version.
pub fn widen_portable(kind: Half, w: &[u16], out: &mut [f32]) {
    assert_eq!(w.len(), out.len());
    for (o, &h) in out.iter_mut().zip(w) {
        *o = half_to_f32(kind, h);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd;

pub mod batch;
mod exp;
pub use exp::{exp_in_place, exp_portable, silu_mul};
mod q8;
mod split;
pub use q8::{dot_q8, dot_q8_portable, dot_q8_tile, q8_interleave, q8_weight_position, q8_weight_row, q8_weights, q8_weights_in_place, q8_weights_len, Q8_GROUP};
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub mod spin_pool;

/// Σ x[i] · w[i] for f32 rows in the fixed order: wasm SIMD in the browser, portable elsewhere.
pub fn dot_f32(x: &[f32], w: &[f32]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot_f32(x, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_f32_portable(x, w);
}

/// Σ x[i] · w[i] with 16-bit `w`, widened exactly on the fly.
pub fn dot_half(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot_half(kind, x, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_half_portable(kind, x, w);
}

/// Σ x[i] · w[i] for f16 `w`, given `x_scaled` = x · 2^112 ([`prescale_for_f16`]).
///
/// Why: the f16 -> f32 re-bias is a multiply by 2^112 per weight; done once
/// per activation instead, the loop is 4 operations shorter per 16 weights.
/// Same bits as [`dot_half`]: x · 2^112 and w · 2^-112 are both exact, so
/// each product is the exact x · w rounded once.
pub fn dot_f16_prescaled(x_scaled: &[f32], w: &[u16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot_f16_prescaled(x_scaled, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return dot_f16_prescaled_portable(x_scaled, w);
}

/// `x · 2^112` for [`dot_f16_prescaled`], when every element stays finite and
/// exact (|x| < 2^16; a NaN or a larger value gives `None`: use [`dot_half`]).
pub fn prescale_for_f16(x: &[f32]) -> Option<Vec<f32>> {
    x.iter().all(|v| v.abs() < 65536.0).then(|| x.iter().map(|v| v * TWO_POW_112).collect())
}

/// [`dot_f32`] of two activation rows with one weight row, the same bits as
/// two calls (the SIMD version shares each weight load).
pub fn dot_f32_x2(x0: &[f32], x1: &[f32], w: &[f32]) -> [f32; 2] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::dot_f32_x2(x0, x1, w);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return [dot_f32_portable(x0, w), dot_f32_portable(x1, w)];
}

/// o[i] += a · v[i]: wasm SIMD in the browser, portable elsewhere (each
/// element is one multiply and one add either way: the same bits).
pub fn axpy(a: f32, v: &[f32], o: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::axpy(a, v, o);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return axpy_portable(a, v, o);
}

/// `out[j]` = [`dot_f32`]`(q, row j)`, row j being `m[j * stride..][..q.len()]`
/// (attention's scores: a head's query against each cached key). Two keys
/// share each load of `q` ([`dot_f32_x2`]: a product's factors commute, so
/// the bits are `dot_f32`'s).
pub fn dot_f32_rows(q: &[f32], m: &[f32], stride: usize, out: &mut [f32]) {
    let row = |j: usize| &m[j * stride..][..q.len()];
    let mut j = 0;
    while j + 1 < out.len() {
        [out[j], out[j + 1]] = dot_f32_x2(row(j), row(j + 1), q);
        j += 2;
    }
    if j < out.len() {
        out[j] = dot_f32(q, row(j));
    }
}

/// `axpy(a[j], row j, o)` for j = 0, 1, ... in order, row j being
/// `m[j * stride..][..o.len()]` (attention's weighted sum of values). In wasm
/// a block of `o` stays in registers over all rows instead of a load and a
/// store per row: each element still gets the same operations in the same order.
pub fn axpy_rows(a: &[f32], m: &[f32], stride: usize, o: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::axpy_rows(a, m, stride, o);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return axpy_rows_portable(a, m, stride, o);
}

/// [`axpy_rows`], portable version.
pub fn axpy_rows_portable(a: &[f32], m: &[f32], stride: usize, o: &mut [f32]) {
    let n = o.len();
    for (j, &aj) in a.iter().enumerate() {
        axpy_portable(aj, &m[j * stride..][..n], o);
    }
}

/// 16-bit float bits -> f32: wasm SIMD in the browser, portable elsewhere.
pub fn widen(kind: Half, w: &[u16], out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::widen(kind, w, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return widen_portable(kind, w, out);
}

/// Quantizes `x` (a multiple of 32 long) to Q8_0 as ggml's `quantize_row_q8_0`
/// does: per block, scale d = max|x| / 127 rounded to f16, quants round(x / d)
/// (half away from zero). Activations get this per row, so a row quantizes
/// the same in any batch. Wasm SIMD in the browser (every decode step and
/// prompt quantizes its activations: a fifth of a prompt's time as scalar
/// code), portable elsewhere; the same bits.
pub fn quantize_q8(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::quantize_q8(x, q, d);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return quantize_q8_portable(x, q, d);
}

/// [`quantize_q8`], portable version.
pub fn quantize_q8_portable(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    assert!(x.len() == q.len() && x.len() == d.len() * Q8_BLOCK);
    for ((xb, qb), db) in x.chunks_exact(Q8_BLOCK).zip(q.chunks_exact_mut(Q8_BLOCK)).zip(d.iter_mut()) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (qv, &v) in qb.iter_mut().zip(xb) {
            *qv = (v * inv).round() as i8; // `as` saturates (and NaN -> 0): never out of range
        }
        *db = half::f16::from_f32(scale).to_f32();
    }
}
