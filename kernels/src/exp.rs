//! e^x for the forward pass's SiLU and softmax, four lanes at a time in the
//! browser, with the same bits natively and in wasm.
//!
//! Why by hand: `libm::expf` is one scalar call per value, a tenth of a
//! prompt's time in SiLU alone; no library has a vector exp that gives the
//! same bits on every machine. This is Cephes' `expf` (range reduction by
//! ln 2 in two parts, a degree-5 polynomial; under 2 ulp) written as plain
//! f32 multiplies and adds in one order (never fused), so the portable
//! version and the SIMD one round alike. Inputs are clamped to where the
//! result is a normal float (about e^-87.3 to e^88.4), which changes no
//! softmax or SiLU result beyond rounding.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const LO: f32 = -87.33;
const HI: f32 = 88.37;
const P: [f32; 6] = [1.987_569_2e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1];

/// e^x, portable version (see the module doc).
#[inline(always)]
pub fn exp_portable(x: f32) -> f32 {
    let x = if x < LO { LO } else if x > HI { HI } else { x };
    let n = (x * LOG2E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let e = (p * (r * r) + r) + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// x[i] = e^x[i]: wasm SIMD in the browser, portable elsewhere; the same bits.
pub fn exp_in_place(x: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = simd::exp_in_place(x);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for v in &mut x[done..] {
        *v = exp_portable(*v);
    }
}

/// gate[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^-g) (SwiGLU).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = simd::silu_mul(gate, up);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for (g, &u) in gate[done..].iter_mut().zip(&up[done..]) {
        *g = *g / (1.0 + exp_portable(-*g)) * u;
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::*;
    use core::arch::wasm32::*;

    /// [`exp_portable`] on four lanes: the same operations in the same order
    /// (the clamp keeps a NaN, as the portable comparisons do).
    #[inline(always)]
    fn exp4(x: v128) -> v128 {
        let x = v128_bitselect(f32x4_splat(LO), x, f32x4_lt(x, f32x4_splat(LO)));
        let x = v128_bitselect(f32x4_splat(HI), x, f32x4_gt(x, f32x4_splat(HI)));
        let n = f32x4_floor(f32x4_add(f32x4_mul(x, f32x4_splat(LOG2E)), f32x4_splat(0.5)));
        let r = f32x4_sub(f32x4_sub(x, f32x4_mul(n, f32x4_splat(LN2_HI))), f32x4_mul(n, f32x4_splat(LN2_LO)));
        let mut p = f32x4_splat(P[0]);
        for c in &P[1..] {
            p = f32x4_add(f32x4_mul(p, r), f32x4_splat(*c));
        }
        let e = f32x4_add(f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), r), f32x4_splat(1.0));
        let scale = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
        f32x4_mul(e, scale)
    }

    /// Whole groups of four; returns how many values it did.
    pub fn exp_in_place(x: &mut [f32]) -> usize {
        let n4 = x.len() / 4 * 4;
        for c in x[..n4].chunks_exact_mut(4) {
            // SAFETY: four f32s; wasm loads and stores need no alignment.
            unsafe { v128_store(c.as_mut_ptr() as *mut v128, exp4(v128_load(c.as_ptr() as *const v128))) };
        }
        n4
    }

    /// Whole groups of four of [`super::silu_mul`]; returns how many it did.
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) -> usize {
        let n4 = gate.len() / 4 * 4;
        for (g, u) in gate[..n4].chunks_exact_mut(4).zip(up.chunks_exact(4)) {
            // SAFETY: four f32s each.
            unsafe {
                let gv = v128_load(g.as_ptr() as *const v128);
                let e = exp4(f32x4_neg(gv));
                let y = f32x4_mul(f32x4_div(gv, f32x4_add(f32x4_splat(1.0), e)), v128_load(u.as_ptr() as *const v128));
                v128_store(g.as_mut_ptr() as *mut v128, y);
            }
        }
        n4
    }
}
