//! The 16-bit float kernel's wasm SIMD version (src/engine/half_kernel.rs),
//! run in headless Chromium by `scripts/test-web-components.sh`: the same
//! checks as tests/half_kernel.rs natively, where the portable version runs.
#![cfg(target_arch = "wasm32")]

use candle_core::{DType, Device, Tensor};
use three_answers::engine::half_kernel::{self, Half};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_browser_build_has_wasm_simd() {
    // Otherwise the checks below would test the portable fallback, and the
    // engine would run its slow paths (.cargo/config.toml sets +simd128).
    assert!(cfg!(target_feature = "simd128"));
}

#[wasm_bindgen_test]
fn half_kernel_simd_widens_every_finite_16_bit_float_exactly() {
    for (kind, reference) in [
        (Half::F16, (|b| half::f16::from_bits(b).to_f32()) as fn(u16) -> f32),
        (Half::Bf16, |b| half::bf16::from_bits(b).to_f32()),
    ] {
        let bits: Vec<u16> = (0..=u16::MAX).filter(|&b| reference(b).is_finite()).collect();
        let mut out = vec![0f32; bits.len()];
        half_kernel::widen(kind, &bits, &mut out); // SIMD for all but the last few
        for (&b, &f) in bits.iter().zip(&out) {
            assert_eq!(f.to_bits(), reference(b).to_bits(), "{kind:?} bits {b:#06x}");
        }
    }
}

#[wasm_bindgen_test]
fn half_kernel_simd_dot_and_matmul_match_the_references() {
    let dev = Device::Cpu;
    for (dtype, kind) in [(DType::F16, Half::F16), (DType::BF16, Half::Bf16)] {
        for (rows, n, k) in [(1, 96, 577), (3, 40, 576), (8, 33, 576), (21, 17, 130)] {
            let x = Tensor::randn(0f32, 1.0, (1, rows, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap().to_dtype(dtype).unwrap();
            let reference = x.broadcast_matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap()).unwrap();
            let ours = half_kernel::matmul(&x, &w).unwrap();
            let diff = (ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff <= 1e-5 * scale.max(1.0), "{dtype:?} rows {rows}: max diff {diff} (scale {scale})");
            // SIMD dot against the portable one on the first row.
            let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let ws: Vec<u16> = match kind {
                Half::F16 => w.flatten_all().unwrap().to_vec1::<half::f16>().unwrap().iter().map(|h| h.to_bits()).collect(),
                Half::Bf16 => w.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap().iter().map(|h| h.to_bits()).collect(),
            };
            let (simd, portable) = (half_kernel::dot(kind, &xs[..k], &ws[..k]), half_kernel::dot_portable(kind, &xs[..k], &ws[..k]));
            assert!((simd - portable).abs() <= 1e-5 * portable.abs().max(1.0), "{kind:?}: {simd} vs {portable}");
        }
    }
}
