//! `x · Wᵀ` for a batch of activation rows (a prompt) or one (a decode step).
//!
//! Every output element is one dot product of the crate root with its fixed
//! order, whatever the batch: batching only shares each weight row's trip
//! through the CPU cache (and, in wasm, its loads) among several rows.

use crate::{dot_f32, dot_f32_x2, dot_q8, dot_q8_4x2, dot_q8_x4, Q8_BLOCK};

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
/// `(q, d)` (n rows of `k`): `out[r * n + j]`. Four activation rows meet two
/// weight rows at a time where there are that many (`dot_q8_4x2`).
pub fn q8_matmul(xq: &[i8], xd: &[f32], q: &[i8], d: &[f32], k: usize, out: &mut [f32]) {
    let (m, n, kb) = (xq.len() / k, q.len() / k, k / Q8_BLOCK);
    let (xq_row, xd_row) = (|r: usize| &xq[r * k..][..k], |r: usize| &xd[r * kb..][..kb]);
    let (wq_row, wd_row) = (|j: usize| &q[j * k..][..k], |j: usize| &d[j * kb..][..kb]);
    let wide: Vec<i16> = if m >= 4 { xq.iter().map(|&v| v as i16).collect() } else { Vec::new() };
    let wide_row = |r: usize| &wide[r * k..][..k];
    for j0 in (0..n).step_by(TILE) {
        let j1 = (j0 + TILE).min(n);
        let mut r = 0;
        while r + 4 <= m {
            let rows = [r, r + 1, r + 2, r + 3];
            let mut j = j0;
            while j + 2 <= j1 {
                let sums = dot_q8_4x2(rows.map(wide_row), rows.map(xd_row), [wq_row(j), wq_row(j + 1)], [wd_row(j), wd_row(j + 1)]);
                for (i, pair) in sums.into_iter().enumerate() {
                    (out[(r + i) * n + j], out[(r + i) * n + j + 1]) = (pair[0], pair[1]);
                }
                j += 2;
            }
            if j < j1 {
                for (i, s) in dot_q8_x4(rows.map(xq_row), rows.map(xd_row), wq_row(j), wd_row(j)).into_iter().enumerate() {
                    out[(r + i) * n + j] = s;
                }
            }
            r += 4;
        }
        for r in r..m {
            for j in j0..j1 {
                out[r * n + j] = dot_q8(xq_row(r), xd_row(r), wq_row(j), wd_row(j));
            }
        }
    }
}
