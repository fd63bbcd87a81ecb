//! The checks of the 16-bit float kernel (src/engine/half_kernel.rs), shared
//! by tests/half_kernel.rs (native: the portable version) and
//! tests/web_kernel.rs (in Chromium: the wasm SIMD version).

use candle_core::{DType, Device, Tensor};
use three_answers::engine::half_kernel::{self, Half};

/// Every finite f16 and bf16 widens bit for bit as the `half` crate converts it.
pub fn every_finite_16_bit_float_widens_exactly() {
    for (kind, reference) in [
        (Half::F16, (|b| half::f16::from_bits(b).to_f32()) as fn(u16) -> f32),
        (Half::Bf16, |b| half::bf16::from_bits(b).to_f32()),
    ] {
        let bits: Vec<u16> = (0..=u16::MAX).filter(|&b| reference(b).is_finite()).collect();
        assert_eq!(bits.len(), match kind { Half::F16 => 65536 - 2048, Half::Bf16 => 65536 - 256 });
        let mut out = vec![0f32; bits.len()];
        half_kernel::widen(kind, &bits, &mut out); // SIMD (where built) for all but the last few
        for (&b, &f) in bits.iter().zip(&out) {
            assert_eq!(f.to_bits(), reference(b).to_bits(), "{kind:?} bits {b:#06x}");
        }
    }
}

/// `half_kernel::matmul` against candle's f32 matmul of the widened weights,
/// for row counts on both sides of `WIDEN_MIN_ROWS`; `dot` against
/// `dot_portable` on each case's first row.
pub fn matmul_matches_candle_f32_for_every_row_count() {
    let dev = Device::Cpu;
    for (dtype, kind) in [(DType::F16, Half::F16), (DType::BF16, Half::Bf16)] {
        // 577 columns: not a multiple of the SIMD width, so the tail is exercised.
        for (rows, n, k) in [(1, 96, 577), (3, 40, 576), (8, 33, 576), (21, 17, 130)] {
            let x = Tensor::randn(0f32, 1.0, (1, rows, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap().to_dtype(dtype).unwrap();
            let reference = x.broadcast_matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap()).unwrap();
            let ours = half_kernel::matmul(&x, &w).unwrap();
            assert_eq!(ours.dims(), &[1, rows, n]);
            let diff = (ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff <= 1e-5 * scale.max(1.0), "{dtype:?} rows {rows}: max diff {diff} (scale {scale})");
            let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let ws: Vec<u16> = match kind {
                Half::F16 => w.flatten_all().unwrap().to_vec1::<half::f16>().unwrap().iter().map(|h| h.to_bits()).collect(),
                Half::Bf16 => w.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap().iter().map(|h| h.to_bits()).collect(),
            };
            let (fast, portable) = (half_kernel::dot(kind, &xs[..k], &ws[..k]), half_kernel::dot_portable(kind, &xs[..k], &ws[..k]));
            assert!((fast - portable).abs() <= 1e-5 * portable.abs().max(1.0), "{kind:?}: {fast} vs {portable}");
        }
    }
}

/// f16 rows against activations scaled by 2^112 (the kernel's path for
/// f16): the same sums as `dot`, bit for bit, over every finite f16 (the
/// subnormals included) and activations from subnormal to near 2^16; larger
/// or non-finite activations are not scaled, and `matmul` still matches
/// candle's f32 matmul for them.
pub fn f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    let bits: Vec<u16> = (0..=u16::MAX).filter(|&b| half::f16::from_bits(b).is_finite()).collect();
    let k = 577; // not a multiple of the SIMD width: the tail is exercised
    let x: Vec<f32> = (0..k)
        .map(|i| {
            let v = ((i * 7919) % 1000) as f32 / 37.0 - 13.0;
            match i % 5 {
                0 => v * 1e-40, // f32 subnormals
                1 => v * 2400.0, // up to ~ 2^15
                _ => v,
            }
        })
        .collect();
    let scaled = half_kernel::prescale_for_f16(&x).expect("every |x| < 2^16");
    for w in bits.chunks_exact(k) {
        let (prescaled, plain) = (half_kernel::dot_f16_prescaled(&scaled, w), half_kernel::dot(Half::F16, &x, w));
        assert_eq!(prescaled.to_bits(), plain.to_bits(), "{prescaled} vs {plain}");
    }
    for v in [65536.0, -70000.0, f32::NAN, f32::INFINITY] {
        assert!(half_kernel::prescale_for_f16(&[1.0, v]).is_none(), "{v} must not be scaled");
    }
    assert!(half_kernel::prescale_for_f16(&[65535.99]).is_some());
    let dev = Device::Cpu;
    let x = (Tensor::randn(0f32, 1.0, (1, 2, 576), &dev).unwrap() * 1e5).unwrap();
    let w = Tensor::randn(0f32, 0.05, (9, 576), &dev).unwrap().to_dtype(DType::F16).unwrap();
    let reference = x.broadcast_matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap()).unwrap();
    let diff = (half_kernel::matmul(&x, &w).unwrap() - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff <= 1e-5 * scale, "large activations: max diff {diff} (scale {scale})");
}

/// f32 weights are refused with words.
pub fn matmul_refuses_weights_that_are_not_16_bit_floats() {
    let x = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let e = half_kernel::matmul(&x, &w).unwrap_err().to_string();
    assert!(e.contains("expected f16 or bf16"), "{e}");
}
