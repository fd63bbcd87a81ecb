//! The engine's kernels (src/engine/kernels.rs, matrix.rs), portable version,
//! against independent references (the `half` crate, ggml's Q8_0 blocks, f64
//! sums), and batch invariance on a tiny random model at every precision.
//! tests/web_kernel.rs runs the same checks on the wasm SIMD kernels in Chromium.

#[path = "common/kernel_checks.rs"]
mod checks;

#[test]
fn every_finite_16_bit_float_widens_exactly() {
    checks::every_finite_16_bit_float_widens_exactly();
}

#[test]
fn dot_products_equal_the_portable_order_bit_for_bit() {
    checks::dot_products_equal_the_portable_order_bit_for_bit();
}

#[test]
fn q8_quantization_equals_ggml_blocks() {
    checks::q8_quantization_equals_ggml_blocks();
}

#[test]
fn f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    checks::f16_prescaled_activations_give_the_same_sums_bit_for_bit();
}

#[test]
fn matmul_rows_are_the_same_in_any_batch() {
    checks::matmul_rows_are_the_same_in_any_batch();
}

#[test]
fn tiny_model_logits_are_the_same_in_any_batch() {
    checks::tiny_model_logits_are_the_same_in_any_batch();
}

#[test]
fn q8_quantization_rounds_as_the_portable_version() {
    checks::q8_quantization_rounds_as_the_portable_version();
}

#[test]
fn exp_is_the_portable_one_and_close_to_libm() {
    checks::exp_is_the_portable_one_and_close_to_libm();
}
