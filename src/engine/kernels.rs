//! The dot products of the forward pass live in their own crate
//! (`kernels/`, `three-answers-kernels`) so the browser worker can build them
//! at opt-level 3 while the rest stays small; see its crate doc for the fixed
//! reduction order that makes a position's logits the same in any batch.
pub use three_answers_kernels::*;
