//! The hand-written 16-bit float kernel (src/engine/half_kernel.rs), portable
//! version, against independent references: the `half` crate's conversions
//! and candle's f32 matmul. tests/web_kernel.rs runs the same checks on the
//! wasm SIMD version in Chromium.

#[path = "common/half_kernel_checks.rs"]
mod checks;

#[test]
fn every_finite_16_bit_float_widens_exactly() {
    checks::every_finite_16_bit_float_widens_exactly();
}

#[test]
fn matmul_matches_candle_f32_for_every_row_count() {
    checks::matmul_matches_candle_f32_for_every_row_count();
}

#[test]
fn f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    checks::f16_prescaled_activations_give_the_same_sums_bit_for_bit();
}

#[test]
fn matmul_refuses_weights_that_are_not_16_bit_floats() {
    checks::matmul_refuses_weights_that_are_not_16_bit_floats();
}
