//! The wasm SIMD versions of the dot products: exactly the portable versions'
//! operations in exactly their order (tests/web_kernel.rs checks the bits).

use crate::{Half, Q8_BLOCK};
use core::arch::wasm32::*;

/// Eight 16-bit floats (one v128) -> two f32x4.
///
/// Interleaving with zeros puts each 16-bit value in the top half of a
/// 32-bit lane: for bf16 that is the f32 already. (A 16-bit interleave is
/// one `punpcklwd` in V8; a byte shuffle or zero-extend + shift decoded
/// 1.4-2.5x slower.) For f16, an arithmetic shift right by 3 puts exponent
/// and mantissa where f32 has them, the mask clears the sign copies, and
/// `* 2^112` re-biases (see `f16_to_f32`). Without `REBIAS`, f16 comes out
/// times 2^-112 (for activations scaled by 2^112).
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
                if REBIAS { f32x4_mul(moved, f32x4_splat(crate::TWO_POW_112)) } else { moved }
            };
            (f(lo), f(hi))
        }
    }
}

/// The float order of the module doc: a0..a3 hold lanes 0-3, 4-7, 8-11, 12-15.
#[inline(always)]
fn finish(a0: v128, a1: v128, a2: v128, a3: v128, tail: f32) -> f32 {
    let s = f32x4_add(f32x4_add(a0, a1), f32x4_add(a2, a3));
    (((f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s)) + f32x4_extract_lane::<2>(s)) + f32x4_extract_lane::<3>(s)) + tail
}

/// The 16-lane loop of the float order over the first `n16` elements: lane
/// group g of block i gets `x[i + 4g..] * w_at(i)[g]` (the weights of
/// elements i..i + 16 as four f32x4). One loop for every weight format; the
/// crate is built at opt-level 3 even in the worker, so `w_at` is inlined.
#[inline(always)]
fn lanes16(x: &[f32], n16: usize, w_at: impl Fn(usize) -> [v128; 4]) -> [v128; 4] {
    let mut acc = [f32x4_splat(0.0); 4];
    let xp = x.as_ptr();
    let mut i = 0;
    while i < n16 {
        let w = w_at(i);
        for g in 0..4 {
            // SAFETY: i + 16 <= n16 <= x.len(); wasm loads need no alignment.
            acc[g] = f32x4_add(acc[g], f32x4_mul(unsafe { v128_load(xp.add(i + 4 * g) as *const v128) }, w[g]));
        }
        i += 16;
    }
    acc
}

pub fn dot_f32(x: &[f32], w: &[f32]) -> f32 {
    assert_eq!(x.len(), w.len());
    let n16 = x.len() / 16 * 16;
    let wp = w.as_ptr();
    // SAFETY: lanes16 asks for i + 16 <= n16 <= w.len().
    let a = lanes16(x, n16, |i| [0, 4, 8, 12].map(|o| unsafe { v128_load(wp.add(i + o) as *const v128) }));
    finish(a[0], a[1], a[2], a[3], crate::dot16_tail(&x[n16..], &w[n16..], |v| v))
}

/// [`dot_f32`] of two activation rows with one weight row: each weight
/// load serves both rows (a prompt's speed); each row's sums are exactly
/// `dot_f32`'s.
pub fn dot_f32_x2(x0: &[f32], x1: &[f32], w: &[f32]) -> [f32; 2] {
    assert!(x0.len() == w.len() && x1.len() == w.len());
    let n16 = w.len() / 16 * 16;
    let z = f32x4_splat(0.0);
    let (mut a, mut b) = ([z; 4], [z; 4]);
    let (p0, p1, wp) = (x0.as_ptr(), x1.as_ptr(), w.as_ptr());
    let mut i = 0;
    while i < n16 {
        // SAFETY: i + 16 <= len for all three slices.
        unsafe {
            for l in 0..4 {
                let wv = v128_load(wp.add(i + 4 * l) as *const v128);
                a[l] = f32x4_add(a[l], f32x4_mul(v128_load(p0.add(i + 4 * l) as *const v128), wv));
                b[l] = f32x4_add(b[l], f32x4_mul(v128_load(p1.add(i + 4 * l) as *const v128), wv));
            }
        }
        i += 16;
    }
    let tail = |x: &[f32]| crate::dot16_tail(&x[n16..], &w[n16..], |v| v);
    [finish(a[0], a[1], a[2], a[3], tail(x0)), finish(b[0], b[1], b[2], b[3], tail(x1))]
}

#[inline(always)]
fn dot_half_kind<const REBIAS: bool>(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    assert_eq!(x.len(), w.len());
    let n16 = x.len() / 16 * 16;
    let wp = w.as_ptr();
    let a = lanes16(x, n16, |i| {
        // SAFETY: lanes16 asks for i + 16 <= n16 <= w.len().
        let (w0, w1) = widen8::<REBIAS>(kind, unsafe { v128_load(wp.add(i) as *const v128) });
        let (w2, w3) = widen8::<REBIAS>(kind, unsafe { v128_load(wp.add(i + 8) as *const v128) });
        [w0, w1, w2, w3]
    });
    let tail = match (kind, REBIAS) {
        (Half::F16, false) => crate::dot16_tail(&x[n16..], &w[n16..], crate::f16_times_two_pow_minus_112),
        (Half::F16, true) => crate::dot16_tail(&x[n16..], &w[n16..], crate::f16_to_f32),
        (Half::Bf16, _) => crate::dot16_tail(&x[n16..], &w[n16..], crate::bf16_to_f32),
    };
    finish(a[0], a[1], a[2], a[3], tail)
}

/// o[i] += a · v[i], four lanes at a time (each lane the scalar operation).
pub fn axpy(a: f32, v: &[f32], o: &mut [f32]) {
    assert_eq!(v.len(), o.len());
    let n4 = v.len() / 4 * 4;
    let (vp, op, av) = (v.as_ptr(), o.as_mut_ptr(), f32x4_splat(a));
    let mut i = 0;
    while i < n4 {
        // SAFETY: i + 4 <= len for both slices.
        unsafe {
            let r = f32x4_add(v128_load(op.add(i) as *const v128), f32x4_mul(av, v128_load(vp.add(i) as *const v128)));
            v128_store(op.add(i) as *mut v128, r);
        }
        i += 4;
    }
    crate::axpy_portable(a, &v[n4..], &mut o[n4..]);
}

/// One copy of the loop per format (the format test is hoisted out).
pub fn dot_half(kind: Half, x: &[f32], w: &[u16]) -> f32 {
    match kind {
        Half::F16 => dot_half_kind::<true>(Half::F16, x, w),
        Half::Bf16 => dot_half_kind::<true>(Half::Bf16, x, w),
    }
}

pub fn dot_f16_prescaled(x_scaled: &[f32], w: &[u16]) -> f32 {
    dot_half_kind::<false>(Half::F16, x_scaled, w)
}

pub fn dot_q8(xq: &[i8], xd: &[f32], wq: &[i8], wd: &[f32]) -> f32 {
    assert!(xq.len() == wq.len() && xd.len() == wd.len() && xq.len() == xd.len() * Q8_BLOCK);
    let mut acc = f32x4_splat(0.0);
    let (xp, wp) = (xq.as_ptr(), wq.as_ptr());
    for b in 0..xd.len() {
        // SAFETY: block b lies within both rows (length check above).
        let isum = unsafe {
            let (xb, wb) = (xp.add(b * Q8_BLOCK), wp.add(b * Q8_BLOCK));
            let part = |o: usize| i32x4_dot_i16x8(i16x8_load_extend_i8x8(xb.add(o)), i16x8_load_extend_i8x8(wb.add(o)));
            i32x4_add(i32x4_add(i32x4_add(part(0), part(8)), part(16)), part(24))
        };
        acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(xd[b] * wd[b])));
    }
    (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc)) + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc))
}

/// [`dot_q8`] for four activation rows against two weight rows: each block
/// of either operand is loaded and widened once for its four (or two) uses,
/// each output's sums are exactly `dot_q8`'s.
pub fn dot_q8_4x2(xq: [&[i16]; 4], xd: [&[f32]; 4], wq: [&[i8]; 2], wd: [&[f32]; 2]) -> [[f32; 2]; 4] {
    let blocks = wd[0].len();
    for r in 0..4 {
        assert!(xq[r].len() == blocks * Q8_BLOCK && xd[r].len() == blocks);
    }
    for c in 0..2 {
        assert!(wq[c].len() == blocks * Q8_BLOCK && wd[c].len() == blocks);
    }
    let mut acc = [[f32x4_splat(0.0); 2]; 4];
    for b in 0..blocks {
        // SAFETY: block b lies within every row (length checks above).
        unsafe {
            let widen = |p: *const i8| [0, 8, 16, 24].map(|o| i16x8_load_extend_i8x8(p.add(b * Q8_BLOCK + o)));
            let (w0, w1) = (widen(wq[0].as_ptr()), widen(wq[1].as_ptr()));
            // Loaded as splats: dx * dw is then one vector multiply (the same f32 product).
            let (d0, d1) = (v128_load32_splat(wd[0].as_ptr().add(b) as *const u32), v128_load32_splat(wd[1].as_ptr().add(b) as *const u32));
            for r in 0..4 {
                let xp = xq[r].as_ptr().add(b * Q8_BLOCK);
                let x = [0, 8, 16, 24].map(|o| v128_load(xp.add(o) as *const v128));
                let isum = |w: &[v128; 4]| i32x4_add(i32x4_add(i32x4_add(i32x4_dot_i16x8(x[0], w[0]), i32x4_dot_i16x8(x[1], w[1])), i32x4_dot_i16x8(x[2], w[2])), i32x4_dot_i16x8(x[3], w[3]));
                let dx = v128_load32_splat(xd[r].as_ptr().add(b) as *const u32);
                acc[r][0] = f32x4_add(acc[r][0], f32x4_mul(f32x4_convert_i32x4(isum(&w0)), f32x4_mul(dx, d0)));
                acc[r][1] = f32x4_add(acc[r][1], f32x4_mul(f32x4_convert_i32x4(isum(&w1)), f32x4_mul(dx, d1)));
            }
        }
    }
    let finish = |a: v128| (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a)) + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
    acc.map(|row| row.map(finish))
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
    crate::widen_portable(kind, &w[n8..], &mut out[n8..]);
}

/// [`crate::quantize_q8_portable`] eight lanes at a time. The max of absolute
/// values is exact in any order; `round` (half away from zero, which wasm
/// has no instruction for) is trunc, plus the sign where the dropped
/// fraction (exact) is at least one half.
pub fn quantize_q8(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    assert!(x.len() == q.len() && x.len() == d.len() * Q8_BLOCK);
    for ((xb, qb), db) in x.chunks_exact(Q8_BLOCK).zip(q.chunks_exact_mut(Q8_BLOCK)).zip(d.iter_mut()) {
        // SAFETY: each block is 32 values: eight loads of four.
        let v: [v128; 8] = core::array::from_fn(|i| unsafe { v128_load(xb.as_ptr().add(4 * i) as *const v128) });
        // A NaN is skipped, as f32::max does (pmax keeps the first operand when unordered).
        let m = v.iter().fold(f32x4_splat(0.0), |m, &a| f32x4_pmax(m, f32x4_abs(a)));
        let amax = f32x4_extract_lane::<0>(m).max(f32x4_extract_lane::<1>(m)).max(f32x4_extract_lane::<2>(m).max(f32x4_extract_lane::<3>(m)));
        let scale = amax / 127.0;
        let inv = f32x4_splat(if scale != 0.0 { 1.0 / scale } else { 0.0 });
        let round = |a: v128| {
            let y = f32x4_mul(a, inv);
            let t = f32x4_trunc(y);
            let up = f32x4_ge(f32x4_abs(f32x4_sub(y, t)), f32x4_splat(0.5));
            let sign = v128_or(v128_and(y, u32x4_splat(0x8000_0000)), f32x4_splat(1.0));
            i32x4_trunc_sat_f32x4(f32x4_add(t, v128_and(up, sign))) // NaN -> 0
        };
        for h in 0..2 {
            let words = [0, 1, 2, 3].map(|i| round(v[4 * h + i]));
            let bytes = i8x16_narrow_i16x8(i16x8_narrow_i32x4(words[0], words[1]), i16x8_narrow_i32x4(words[2], words[3]));
            // SAFETY: 16 of the block's 32 quants.
            unsafe { v128_store(qb.as_mut_ptr().add(16 * h) as *mut v128, bytes) };
        }
        *db = half::f16::from_f32(scale).to_f32();
    }
}
