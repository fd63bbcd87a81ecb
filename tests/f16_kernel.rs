//! The hand-written f16 kernel (src/engine/f16_kernel.rs) against
//! independent references: the `half` crate's conversion and candle's f32
//! matmul. The same checks run in the browser on the wasm SIMD version
//! (tests/web.rs, `f16_kernel_simd_*`).

use candle_core::{DType, Device, Tensor};
use three_answers::engine::f16_kernel;

#[test]
fn every_finite_f16_widens_exactly() {
    let mut checked = 0;
    for bits in 0..=u16::MAX {
        let h = half::f16::from_bits(bits);
        if !h.is_finite() {
            continue;
        }
        let mut out = [0f32];
        f16_kernel::widen(&[bits], &mut out);
        assert_eq!(out[0].to_bits(), h.to_f32().to_bits(), "bits {bits:#06x}");
        assert_eq!(f16_kernel::f16_to_f32(bits).to_bits(), h.to_f32().to_bits(), "bits {bits:#06x}");
        checked += 1;
    }
    assert_eq!(checked, 65536 - 2048); // all but the inf/NaN patterns (exponent 31)
}

#[test]
fn matmul_matches_candle_f32_on_f16_weights_for_every_row_count() {
    let dev = Device::Cpu;
    // 577 columns: not a multiple of the SIMD width, so the tail is exercised.
    for (rows, n, k) in [(1, 96, 577), (3, 40, 576), (8, 33, 576), (21, 17, 130)] {
        let x = Tensor::randn(0f32, 1.0, (1, rows, k), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap().to_dtype(DType::F16).unwrap();
        let reference = x.broadcast_matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap()).unwrap();
        let ours = f16_kernel::matmul(&x, &w).unwrap();
        assert_eq!(ours.dims(), &[1, rows, n]);
        let diff = (ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff <= 1e-5 * scale.max(1.0), "rows {rows}: max diff {diff} (scale {scale})");
    }
}

#[test]
fn matmul_refuses_weights_that_are_not_f16() {
    let x = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let e = f16_kernel::matmul(&x, &w).unwrap_err().to_string();
    assert!(e.contains("expected f16"), "{e}");
}
