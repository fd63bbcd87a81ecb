//! `x · Wᵀ` for a batch of activation rows (a prompt) or one (a decode step).
//!
//! Every output element is one dot product of the crate root with its fixed
//! order, whatever the batch: batching only shares each weight row's trip
//! through the CPU cache (and, in wasm, its loads) among several rows.

use crate::{dot_f32, dot_f32_x2, dot_q8, dot_q8_tile, q8_interleave, q8_weight_row, quantize_q8, Q8_BLOCK};
pub use crate::split::{for_each_chunk_mut, for_each_chunk_pair_mut, for_each_tile, for_each_tile_of, set_threads, threads, TILE};

/// One tile of f32 weight rows `w` (rows `j0..` of the matrix, `k` values
/// each) against every row of `x`, into `out` (rows of `stride` values,
/// column j at j - col0), two activation rows per weight load.
pub fn f32_tile(x: &[f32], k: usize, w: &[f32], j0: usize, out: &mut [f32], stride: usize, col0: usize) {
    let (m, rows) = (x.len() / k, w.len() / k);
    let xr = |r: usize| &x[r * k..][..k];
    let at = |r: usize, j: usize| r * stride + j - col0;
    let mut r = 0;
    while r < m {
        for (j, wj) in (j0..j0 + rows).zip(w.chunks_exact(k)) {
            if r + 1 < m {
                let [a, b] = dot_f32_x2(xr(r), xr(r + 1), wj);
                (out[at(r, j)], out[at(r + 1, j)]) = (a, b);
            } else {
                out[at(r, j)] = dot_f32(xr(r), wj);
            }
        }
        r += 2;
    }
}

/// Activation rows quantized to Q8_0 for [`q8_matmul`] (ggml's
/// `quantize_row_q8_0` per row): quants widened to i16 in the kernels' layout
/// ([`crate::q8_interleave`]), and one scale per block.
pub struct Q8Rows {
    q: Vec<i16>,
    d: Vec<f32>,
    k: usize,
}

impl Q8Rows {
    /// `x`: rows of `k` values (`k` a multiple of 32). A prompt's rows are
    /// quantized over the threads (each row alone, so the same bits).
    pub fn quantize(x: &[f32], k: usize) -> Self {
        let (mut q, mut d) = (vec![0i16; x.len()], vec![0f32; x.len() / Q8_BLOCK]);
        let m = x.len() / k.max(1);
        for_each_chunk_pair_mut(&mut q, k, &mut d, k / Q8_BLOCK, m >= 8, |r, qr, dr| {
            let mut q8 = vec![0i8; k];
            quantize_q8(&x[r * k..][..k], &mut q8, dr);
            q8_interleave(&q8, k, qr);
        });
        Self { q, d, k }
    }

    pub fn rows(&self) -> usize {
        self.q.len() / self.k
    }
}

/// `x · Wᵀ` for Q8_0 activations `x` (m rows of `k`) and Q8_0 weights
/// `(q, d)` (n rows of `k` in the kernels' layout, `crate::q8_weights`):
/// `out[r * n + j]`. See [`q8_matmul_many`].
pub fn q8_matmul(x: &Q8Rows, q: &[i8], d: &[f32], out: &mut [f32]) {
    q8_matmul_many(x, &[(q, d)], &mut [out]);
}

/// Several products of the same activations (q, k and v; gate and up) as one
/// parallel region: `outs[p]` = x · W_pᵀ. Four activation rows meet two
/// weight rows at a time, a row left over (decoding's one row) four side by
/// side (`dot_q8_tile`); tiles of weight rows may go to several threads
/// ([`set_threads`]). Each output is one dot product in the fixed order
/// whatever the tile, so neither the batch nor the thread count changes a bit.
pub fn q8_matmul_many(x: &Q8Rows, weights: &[(&[i8], &[f32])], outs: &mut [&mut [f32]]) {
    let (m, k) = (x.rows(), x.k);
    let kb = k / Q8_BLOCK;
    let (xq, xd) = (|r: usize| &x.q[r * k..][..k], |r: usize| &x.d[r * kb..][..kb]);
    let ns: Vec<usize> = weights.iter().map(|(_, d)| d.len() / kb).collect();
    // One tile: weight rows j0..j1 (j0 a multiple of 4) of product p against
    // every activation row, into `o` (m rows of `stride` values, column j at j - col0).
    let tile = |p: usize, j0: usize, j1: usize, o: &mut [f32], stride: usize, col0: usize| {
        let (q, d) = weights[p];
        let (wq, wd) = (|j: usize| q8_weight_row(q, j, k), |j: usize| &d[j * kb..][..kb]);
        let at = |r: usize, j: usize| r * stride + j - col0;
        let grouped = m / 4 * 4;
        for r in (0..grouped).step_by(4) {
            let (rq, rd) = ([xq(r), xq(r + 1), xq(r + 2), xq(r + 3)], [xd(r), xd(r + 1), xd(r + 2), xd(r + 3)]);
            let mut j = j0;
            while j < j1 {
                if j + 1 < j1 {
                    let sums = dot_q8_tile(rq, rd, [wq(j), wq(j + 1)], [wd(j), wd(j + 1)]);
                    for (i, pair) in sums.into_iter().enumerate() {
                        (o[at(r + i, j)], o[at(r + i, j + 1)]) = (pair[0], pair[1]);
                    }
                    j += 2;
                } else {
                    let sums = dot_q8_tile(rq, rd, [wq(j)], [wd(j)]);
                    for (i, one) in sums.into_iter().enumerate() {
                        o[at(r + i, j)] = one[0];
                    }
                    j += 1;
                }
            }
        }
        for r in grouped..m {
            let mut j = j0;
            while j + 4 <= j1 {
                let [sums] = dot_q8_tile([xq(r)], [xd(r)], [wq(j), wq(j + 1), wq(j + 2), wq(j + 3)], [wd(j), wd(j + 1), wd(j + 2), wd(j + 3)]);
                for (c, v) in sums.into_iter().enumerate() {
                    o[at(r, j + c)] = v;
                }
                j += 4;
            }
            for j in j..j1 {
                o[at(r, j)] = dot_q8(xq(r), xd(r), wq(j), wd(j));
            }
        }
    };
    for_each_tile_of(m, &ns, outs, tile);
}
