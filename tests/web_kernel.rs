//! The 16-bit float kernel's wasm SIMD version (src/engine/half_kernel.rs),
//! run in headless Chromium by `scripts/test-web-components.sh`: the checks of
//! tests/half_kernel.rs (tests/common/half_kernel_checks.rs), where natively
//! the portable version runs.
#![cfg(target_arch = "wasm32")]

#[path = "common/half_kernel_checks.rs"]
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
fn half_kernel_simd_widens_every_finite_16_bit_float_exactly() {
    checks::every_finite_16_bit_float_widens_exactly();
}

#[wasm_bindgen_test]
fn half_kernel_simd_dot_and_matmul_match_the_references() {
    checks::matmul_matches_candle_f32_for_every_row_count();
}

#[wasm_bindgen_test]
fn half_kernel_simd_f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    checks::f16_prescaled_activations_give_the_same_sums_bit_for_bit();
}

#[wasm_bindgen_test]
fn half_kernel_simd_refuses_weights_that_are_not_16_bit_floats() {
    checks::matmul_refuses_weights_that_are_not_16_bit_floats();
}
