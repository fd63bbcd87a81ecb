//! The wasm SIMD versions of the dot products: exactly the portable versions'
//! operations in exactly their order (tests/web_kernel.rs checks the bits).

use crate::{Half, Q8_BLOCK, Q8_GROUP};

/// Weight chunks (eight quants) lie every 32 bytes: rows side by side in fours (q8.rs).
const W_STRIDE: usize = 32;
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
    let a = lanes16(x, n16, |i| {
        let at = |o: usize| unsafe { v128_load(wp.add(i + o) as *const v128) };
        [at(0), at(4), at(8), at(12)] // not an array `map`: that stayed an out-of-line call
    });
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

/// [`crate::axpy_rows`]: 32 elements of `o` at a time held in eight
/// registers over all rows, then 4 at a time, then one.
pub fn axpy_rows(a: &[f32], m: &[f32], stride: usize, o: &mut [f32]) {
    let n = o.len();
    assert!(a.is_empty() || (a.len() - 1) * stride + n <= m.len());
    let (mp, op) = (m.as_ptr(), o.as_mut_ptr());
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: o's block and each row's (j * stride + i + 32 <= m.len(), asserted).
        unsafe {
            let mut acc = [f32x4_splat(0.0); 8];
            for (l, acc) in acc.iter_mut().enumerate() {
                *acc = v128_load(op.add(i + 4 * l) as *const v128);
            }
            for (j, &aj) in a.iter().enumerate() {
                let (s, row) = (f32x4_splat(aj), mp.add(j * stride + i));
                for (l, acc) in acc.iter_mut().enumerate() {
                    *acc = f32x4_add(*acc, f32x4_mul(s, v128_load(row.add(4 * l) as *const v128)));
                }
            }
            for (l, acc) in acc.iter().enumerate() {
                v128_store(op.add(i + 4 * l) as *mut v128, *acc);
            }
        }
        i += 32;
    }
    while i + 4 <= n {
        // SAFETY: as above, for a block of four.
        unsafe {
            let mut acc = v128_load(op.add(i) as *const v128);
            for (j, &aj) in a.iter().enumerate() {
                acc = f32x4_add(acc, f32x4_mul(f32x4_splat(aj), v128_load(mp.add(j * stride + i) as *const v128)));
            }
            v128_store(op.add(i) as *mut v128, acc);
        }
        i += 4;
    }
    for (e, oe) in o.iter_mut().enumerate().skip(i) {
        for (j, &aj) in a.iter().enumerate() {
            *oe = *oe + aj * m[j * stride + e];
        }
    }
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

/// The fixed Q8_0 order (crate doc) for `R` activation rows × `C` weight
/// rows: in a whole group, step s loads each row's eight interleaved values
/// once, and each i16x8 dot product adds a pair of every block to lane b;
/// one float update per output per group; a last partial group likewise
/// (q8.rs's pair, then an odd block totalled across its lanes).
/// Integer sums are exact in any order. Written with plain loops
/// over R and C (no array `map`s, which stayed out-of-line calls) so that
/// every sum stays in a register.
#[inline(always)]
pub fn dot_q8_tile<const R: usize, const C: usize>(x: [&[i16]; R], xd: [&[f32]; R], w: [&[i8]; C], wd: [&[f32]; C]) -> [[f32; C]; R] {
    let blocks = wd[0].len();
    for r in 0..R {
        assert!(x[r].len() == blocks * Q8_BLOCK && xd[r].len() == blocks);
    }
    for c in 0..C {
        assert!(w[c].len() == (blocks * Q8_BLOCK / 8 - 1) * W_STRIDE + 8 && wd[c].len() == blocks);
    }
    let (groups, first) = (blocks / Q8_GROUP, blocks / Q8_GROUP * Q8_GROUP);
    let mut acc = [[f32x4_splat(0.0); C]; R];
    let mut sums = [[i32x4_splat(0); C]; R];
    let (mut dx, mut dw) = ([f32x4_splat(0.0); R], [f32x4_splat(0.0); C]);
    // The partial group (g = groups) first: last, it made decoding's reads
    // from memory 1.6x slower (the next row's loads waited on its tail).
    let partial = first < blocks;
    for step in 0..groups + partial as usize {
        let g = if partial { (step + groups) % (groups + 1) } else { step };
        for r in 0..R {
            for c in 0..C {
                sums[r][c] = i32x4_splat(0);
            }
        }
        // SAFETY (all loads): every offset is within the rows, whose lengths
        // the asserts checked: activation chunk i at 8i, weight chunk i at
        // 32i, i < blocks * 4; scales 4g..4g + 4 exist for g < groups.
        unsafe {
            if g < groups {
                add_chunks(&mut sums, x, w, g * Q8_GROUP * Q8_BLOCK / 8, Q8_BLOCK / 2);
                for r in 0..R {
                    dx[r] = v128_load(xd[r].as_ptr().add(g * Q8_GROUP) as *const v128);
                }
                for c in 0..C {
                    dw[c] = v128_load(wd[c].as_ptr().add(g * Q8_GROUP) as *const v128);
                }
            } else {
                // The partial group: a pair (lanes 0, 1 after folding 2, 3
                // onto them), then an odd block summed across its lanes.
                let mut at = first * Q8_BLOCK;
                if blocks - first >= 2 {
                    add_chunks(&mut sums, x, w, at / 8, Q8_BLOCK / 4);
                    let pair = v128_load(LANE_MASKS[3].as_ptr() as *const v128);
                    for r in 0..R {
                        for c in 0..C {
                            let p = sums[r][c];
                            sums[r][c] = v128_and(i32x4_add(p, i32x4_shuffle::<2, 3, 0, 1>(p, p)), pair);
                        }
                    }
                    at += 2 * Q8_BLOCK;
                }
                if (blocks - first) % 2 == 1 {
                    let lane = v128_load(LANE_MASKS[blocks - first - 1].as_ptr() as *const v128);
                    for r in 0..R {
                        for c in 0..C {
                            let d = |o: usize| i32x4_dot_i16x8(v128_load(x[r].as_ptr().add(at + o) as *const v128), i16x8_load_extend_i8x8(w[c].as_ptr().add((at + o) / 8 * W_STRIDE)));
                            let p = i32x4_add(i32x4_add(d(0), d(8)), i32x4_add(d(16), d(24)));
                            let p = i32x4_add(p, i32x4_shuffle::<2, 3, 0, 1>(p, p));
                            let total = i32x4_add(p, i32x4_shuffle::<1, 0, 3, 2>(p, p));
                            sums[r][c] = i32x4_add(sums[r][c], v128_and(total, lane));
                        }
                    }
                }
                // The partial group's scales, zero past its last block (no
                // memcpy: a copy of a run-time length was a call per row).
                let t = blocks - first;
                let scales = |d: &[f32]| {
                    let p = d.as_ptr().add(first);
                    match t {
                        1 => v128_load32_zero(p as *const u32),
                        2 => v128_load64_zero(p as *const u64),
                        _ => f32x4_replace_lane::<2>(v128_load64_zero(p as *const u64), *p.add(2)),
                    }
                };
                for r in 0..R {
                    dx[r] = scales(xd[r]);
                }
                for c in 0..C {
                    dw[c] = scales(wd[c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(f32x4_convert_i32x4(sums[r][c]), f32x4_mul(dx[r], dw[c])));
            }
        }
    }
    let mut out = [[0f32; C]; R];
    for r in 0..R {
        for c in 0..C {
            let a = acc[r][c];
            out[r][c] = (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a)) + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
        }
    }
    out
}

/// sums[r][c] += the i16x8 dot products of chunks `first..first + n` of
/// activation row r (chunk i at 8i) and weight row c (chunk i at 32i): each
/// loaded and widened chunk serves all its uses.
///
/// SAFETY: the chunks lie within every row (the caller's length asserts).
#[inline(always)]
unsafe fn add_chunks<const R: usize, const C: usize>(sums: &mut [[v128; C]; R], x: [&[i16]; R], w: [&[i8]; C], first: usize, n: usize) {
    for i in first..first + n {
        let mut wv = [i32x4_splat(0); C];
        for c in 0..C {
            wv[c] = i16x8_load_extend_i8x8(w[c].as_ptr().add(i * W_STRIDE));
        }
        for r in 0..R {
            let xv = v128_load(x[r].as_ptr().add(8 * i) as *const v128);
            for c in 0..C {
                sums[r][c] = i32x4_add(sums[r][c], i32x4_dot_i16x8(xv, wv[c]));
            }
        }
    }
}

/// Lane b of a partial group's sums belongs to its block b (0, 2: an odd
/// last block; the last mask keeps a pair's lanes 0 and 1).
static LANE_MASKS: [[i32; 4]; 4] = [[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [-1, -1, 0, 0]];

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
/// fraction (exact) is at least one half. Plain loops, no array `map` or
/// `from_fn`: those stayed out-of-line calls (2.7% of a decoding step's
/// profile with them, 1% without).
pub fn quantize_q8(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    assert!(x.len() == q.len() && x.len() == d.len() * Q8_BLOCK);
    #[inline(always)]
    fn round(a: v128, inv: v128) -> v128 {
        let y = f32x4_mul(a, inv);
        let t = f32x4_trunc(y);
        let up = f32x4_ge(f32x4_abs(f32x4_sub(y, t)), f32x4_splat(0.5));
        let sign = v128_or(v128_and(y, u32x4_splat(0x8000_0000)), f32x4_splat(1.0));
        i32x4_trunc_sat_f32x4(f32x4_add(t, v128_and(up, sign))) // NaN -> 0
    }
    for ((xb, qb), db) in x.chunks_exact(Q8_BLOCK).zip(q.chunks_exact_mut(Q8_BLOCK)).zip(d.iter_mut()) {
        let mut v = [f32x4_splat(0.0); 8];
        // A NaN is skipped, as f32::max does (pmax keeps the first operand when unordered).
        let mut m = f32x4_splat(0.0);
        for i in 0..8 {
            // SAFETY: each block is 32 values: eight loads of four.
            v[i] = unsafe { v128_load(xb.as_ptr().add(4 * i) as *const v128) };
            m = f32x4_pmax(m, f32x4_abs(v[i]));
        }
        let amax = f32x4_extract_lane::<0>(m).max(f32x4_extract_lane::<1>(m)).max(f32x4_extract_lane::<2>(m).max(f32x4_extract_lane::<3>(m)));
        let scale = amax / 127.0;
        let inv = f32x4_splat(if scale != 0.0 { 1.0 / scale } else { 0.0 });
        for h in 0..2 {
            let lo = i16x8_narrow_i32x4(round(v[4 * h], inv), round(v[4 * h + 1], inv));
            let hi = i16x8_narrow_i32x4(round(v[4 * h + 2], inv), round(v[4 * h + 3], inv));
            // SAFETY: 16 of the block's 32 quants.
            unsafe { v128_store(qb.as_mut_ptr().add(16 * h) as *mut v128, i8x16_narrow_i16x8(lo, hi)) };
        }
        *db = half::f16::from_f32(scale).to_f32();
    }
}
