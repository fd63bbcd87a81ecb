//! The engine's wasm SIMD kernels, run in headless Chromium by
//! `scripts/test-web-components.sh`: the checks of tests/kernels.rs
//! (tests/common/kernel_checks.rs), where natively the portable kernels run.
//! Each SIMD dot product must give the portable version's bits, so the
//! browser computes the same logits as the native engine.
#![cfg(target_arch = "wasm32")]

#[path = "common/kernel_checks.rs"]
mod checks;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_browser_build_has_wasm_simd() {
    // Otherwise the checks below would test the portable fallback, and the
    // engine would run its slow paths (.cargo/config.toml sets +simd128).
    assert!(cfg!(target_feature = "simd128"));
}

#[wasm_bindgen_test]
fn simd_widens_every_finite_16_bit_float_exactly() {
    checks::every_finite_16_bit_float_widens_exactly();
}

#[wasm_bindgen_test]
fn simd_dot_products_equal_the_portable_order_bit_for_bit() {
    checks::dot_products_equal_the_portable_order_bit_for_bit();
}

#[wasm_bindgen_test]
fn simd_q8_quantization_equals_ggml_blocks() {
    checks::q8_quantization_equals_ggml_blocks();
}

#[wasm_bindgen_test]
fn simd_f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    checks::f16_prescaled_activations_give_the_same_sums_bit_for_bit();
}

#[wasm_bindgen_test]
fn simd_matmul_rows_are_the_same_in_any_batch() {
    checks::matmul_rows_are_the_same_in_any_batch();
}

#[wasm_bindgen_test]
fn simd_tiny_model_logits_are_the_same_in_any_batch() {
    checks::tiny_model_logits_are_the_same_in_any_batch();
}

#[wasm_bindgen_test]
fn simd_q8_quantization_rounds_as_the_portable_version() {
    checks::q8_quantization_rounds_as_the_portable_version();
}

#[wasm_bindgen_test]
fn simd_exp_is_the_portable_one_and_close_to_libm() {
    checks::exp_is_the_portable_one_and_close_to_libm();
}
