//! `x · Wᵀ` for a batch of activation rows (a prompt) or one (a decode step).
//!
//! Every output element is one dot product of the crate root with its fixed
//! order, whatever the batch: batching only shares each weight row's trip
//! through the CPU cache (and, in wasm, its loads) among several rows.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{dot_f32, dot_f32_x2, dot_q8, dot_q8_tile, q8_interleave, q8_weight_row, quantize_q8, Q8_BLOCK};

/// Weight rows multiplied against every activation row before the next rows:
/// they stay in the CPU cache meanwhile (the prompt's rows are re-read instead,
/// which are far fewer bytes than the weights).
pub const TILE: usize = 16;

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
    /// `x`: rows of `k` values (`k` a multiple of 32).
    pub fn quantize(x: &[f32], k: usize) -> Self {
        let (mut q8, mut d) = (vec![0i8; x.len()], vec![0f32; x.len() / Q8_BLOCK]);
        quantize_q8(x, &mut q8, &mut d);
        let mut q = vec![0i16; x.len()];
        q8_interleave(&q8, k, &mut q);
        Self { q, d, k }
    }

    pub fn rows(&self) -> usize {
        self.q.len() / self.k
    }
}

/// `x · Wᵀ` for Q8_0 activations `x` (m rows of `k`) and Q8_0 weights
/// `(q, d)` (n rows of `k` in the kernels' layout, `crate::q8_weights`):
/// `out[r * n + j]`. Four activation rows meet two weight rows at a time, a
/// row left over (decoding's one row) four side by side (`dot_q8_tile`);
/// tiles of weight rows may go to several threads ([`set_threads`]). Each
/// output is one dot product in the fixed order whatever the tile, so neither
/// the batch nor the thread count changes a bit.
pub fn q8_matmul(x: &Q8Rows, q: &[i8], d: &[f32], out: &mut [f32]) {
    let (m, k) = (x.rows(), x.k);
    let kb = k / Q8_BLOCK;
    let (xq, xd) = (|r: usize| &x.q[r * k..][..k], |r: usize| &x.d[r * kb..][..kb]);
    let (wq, wd) = (|j: usize| q8_weight_row(q, j, k), |j: usize| &d[j * kb..][..kb]);
    // One tile: weight rows j0..j1 (j0 a multiple of 4) against every
    // activation row, into `o` (m rows of `stride` values, column j at j - col0).
    let tile = |j0: usize, j1: usize, o: &mut [f32], stride: usize, col0: usize| {
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
    for_each_tile(m, d.len() / kb, out, tile);
}

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// How many threads a product may split its tiles of weight rows over
/// (natively rayon's pool; 1, the default, splits nothing). In the browser
/// the threaded worker's pool (`spin_pool`) decides, and this only reports.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
    // Rayon's pool can be sized once a process; later calls keep that pool.
    #[cfg(not(target_arch = "wasm32"))]
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global();
}

/// See [`set_threads`].
pub fn threads() -> usize {
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    return crate::spin_pool::helpers() + 1;
    #[allow(unreachable_code)]
    THREADS.load(Ordering::Relaxed)
}

/// Calls `tile(j0, j1, out, n, 0)` for every tile of weight rows `j0..j1`, or,
/// with several threads, each thread's run of tiles into a buffer of its own,
/// copied into `out` (m rows of n) after: threads never share an output row's
/// memory, and each output is still one dot product, so the bits are the same.
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "atomics")), allow(unused_variables))]
pub fn for_each_tile(m: usize, n: usize, out: &mut [f32], tile: impl Fn(usize, usize, &mut [f32], usize, usize) + Sync) {
    let bounds = |t: usize| (t * TILE, (t * TILE + TILE).min(n));
    let tiles = n.div_ceil(TILE);
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    if threads() > 1 && tiles > 1 && m * n >= MIN_SPLIT_OUTPUTS {
        return split_over_pool(m, n, out, &tile);
    }
    #[cfg(not(target_arch = "wasm32"))]
    if threads() > 1 && tiles > 1 {
        use rayon::prelude::*;
        let parts: Vec<Vec<f32>> = (0..tiles)
            .into_par_iter()
            .map(|t| {
                let (j0, j1) = bounds(t);
                let mut part = vec![0f32; m * (j1 - j0)];
                tile(j0, j1, &mut part, j1 - j0, j0);
                part
            })
            .collect();
        for (t, part) in parts.iter().enumerate() {
            let (j0, j1) = bounds(t);
            for (r, row) in part.chunks_exact(j1 - j0).enumerate() {
                out[r * n + j0..r * n + j1].copy_from_slice(row);
            }
        }
        return;
    }
    for t in 0..tiles {
        let (j0, j1) = bounds(t);
        tile(j0, j1, out, n, 0);
    }
}

/// Below this many outputs a split costs more than it saves in the browser
/// (a pool's wake-up is microseconds; a decode step's smallest products are
/// 576 outputs of 576 weights each).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
const MIN_SPLIT_OUTPUTS: usize = 256;

/// The threaded browser worker's split: one job per thread (not per tile:
/// every job is one fork/join's worth of work), each a run of whole tiles.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn split_over_pool(m: usize, n: usize, out: &mut [f32], tile: &(impl Fn(usize, usize, &mut [f32], usize, usize) + Sync)) {
    let jobs = threads().min(n.div_ceil(TILE));
    let per_job = n.div_ceil(TILE).div_ceil(jobs) * TILE;
    let span = |i: usize| (i * per_job, ((i + 1) * per_job).min(n));
    let chunks = n.div_ceil(per_job);
    let mut parts: Vec<Vec<f32>> = (0..chunks).map(|i| vec![0f32; m * (span(i).1 - span(i).0)]).collect();
    /// The parts, shared with the pool: job i writes only part i.
    struct Parts(*mut Vec<f32>);
    // SAFETY: job i touches only part i, and `parts` outlives `run`.
    unsafe impl Sync for Parts {}
    impl Parts {
        /// SAFETY: once per i, while the parts live (see `Parts`).
        #[allow(clippy::mut_from_ref)]
        unsafe fn part(&self, i: usize) -> &mut Vec<f32> {
            &mut *self.0.add(i)
        }
    }
    let shared = Parts(parts.as_mut_ptr());
    crate::spin_pool::run(chunks, &|i| {
        let (j0, j1) = span(i);
        // SAFETY: the pool calls each i < chunks exactly once (see `Parts`).
        let part = unsafe { shared.part(i) };
        for t0 in (j0..j1).step_by(TILE) {
            tile(t0, (t0 + TILE).min(j1), part, j1 - j0, j0);
        }
    });
    for (i, part) in parts.iter().enumerate() {
        let (j0, j1) = span(i);
        for (r, row) in part.chunks_exact(j1 - j0).enumerate() {
            out[r * n + j0..r * n + j1].copy_from_slice(row);
        }
    }
}
