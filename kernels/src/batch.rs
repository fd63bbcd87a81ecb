//! `x · Wᵀ` for a batch of activation rows (a prompt) or one (a decode step).
//!
//! Every output element is one dot product of the crate root with its fixed
//! order, whatever the batch: batching only shares each weight row's trip
//! through the CPU cache (and, in wasm, its loads) among several rows.

use crate::{dot_f32, dot_f32_x2, dot_q8, dot_q8_x4, Q8_BLOCK};

/// Weight rows multiplied against every activation row before the next rows:
/// they stay in the CPU cache meanwhile (the prompt's rows are re-read instead,
/// which are far fewer bytes than the weights).
pub const TILE: usize = 16;

/// One tile of f32 weight rows `w` (rows `j0..` of a matrix `n` rows wide,
/// `k` values each) against every row of `x`: `out[r * n + j]`.
pub fn f32_tile(x: &[f32], k: usize, w: &[f32], j0: usize, n: usize, out: &mut [f32]) {
    let (m, rows) = (x.len() / k, w.len() / k);
    let xr = |r: usize| &x[r * k..][..k];
    let mut r = 0;
    while r < m {
        for (j, wj) in (j0..j0 + rows).zip(w.chunks_exact(k)) {
            if r + 1 < m {
                let [a, b] = dot_f32_x2(xr(r), xr(r + 1), wj);
                (out[r * n + j], out[(r + 1) * n + j]) = (a, b);
            } else {
                out[r * n + j] = dot_f32(xr(r), wj);
            }
        }
        r += 2;
    }
}

/// `x · Wᵀ` for Q8_0 activations `(xq, xd)` (m rows of `k`) and Q8_0 weights
/// `(q, d)` (n rows of `k`): `out[r * n + j]`.
pub fn q8_matmul(xq: &[i8], xd: &[f32], q: &[i8], d: &[f32], k: usize, out: &mut [f32]) {
    let (m, n, kb) = (xq.len() / k, q.len() / k, k / Q8_BLOCK);
    let (xq_row, xd_row) = (|r: usize| &xq[r * k..][..k], |r: usize| &xd[r * kb..][..kb]);
    for j0 in (0..n).step_by(TILE) {
        let mut r = 0;
        while r < m {
            for j in j0..(j0 + TILE).min(n) {
                let (wq, wd) = (&q[j * k..][..k], &d[j * kb..][..kb]);
                if r + 4 <= m {
                    let rows = [r, r + 1, r + 2, r + 3];
                    let sums = dot_q8_x4(rows.map(xq_row), rows.map(xd_row), wq, wd);
                    for (i, s) in sums.into_iter().enumerate() {
                        out[(r + i) * n + j] = s;
                    }
                } else {
                    out[r * n + j] = dot_q8(xq_row(r), xd_row(r), wq, wd);
                }
            }
            r += if r + 4 <= m { 4 } else { 1 };
        }
    }
}
