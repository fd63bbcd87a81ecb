//! Sharing a product's tiles of weight rows out over threads: natively
//! rayon's pool (the CLI's `--threads`), in the threaded browser worker
//! `spin_pool`. Each output is still one dot product, computed by one
//! thread, so the thread count changes no bits.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Weight rows multiplied against every activation row before the next rows:
/// they stay in the CPU cache meanwhile (the prompt's rows are re-read instead,
/// which are far fewer bytes than the weights).
pub const TILE: usize = 16;

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

/// [`for_each_tile_of`] for one product: `tile(j0, j1, out, stride, col0)`.
pub fn for_each_tile(m: usize, n: usize, out: &mut [f32], tile: impl Fn(usize, usize, &mut [f32], usize, usize) + Sync) {
    for_each_tile_of(m, &[n], &mut [out], |_, j0, j1, o, stride, col0| tile(j0, j1, o, stride, col0));
}

/// Calls `tile(p, j0, j1, out, stride, col0)` for every tile of weight rows
/// `j0..j1` of every product p (`ns[p]` weight rows; `outs[p]`: m rows of
/// `ns[p]`, column j at `r * stride + j - col0`). With several threads the
/// products' tiles form one parallel region, in runs of tiles (a few per
/// thread, so a thread that starts late takes fewer). One row is written in
/// place (runs own disjoint columns); several rows go through a buffer per
/// run, copied after, so that threads never share an output row's memory.
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "atomics")), allow(unused_variables))]
pub fn for_each_tile_of(m: usize, ns: &[usize], outs: &mut [&mut [f32]], tile: impl Fn(usize, usize, usize, &mut [f32], usize, usize) + Sync) {
    assert_eq!(ns.len(), outs.len());
    let tiles: usize = ns.iter().map(|n| n.div_ceil(TILE)).sum();
    if threads() > 1 && tiles > 1 && m * ns.iter().sum::<usize>() >= MIN_SPLIT_OUTPUTS {
        return split(m, ns, outs, &tile, tiles);
    }
    for (p, (&n, out)) in ns.iter().zip(outs.iter_mut()).enumerate() {
        for j0 in (0..n).step_by(TILE) {
            tile(p, j0, (j0 + TILE).min(n), out, n, 0);
        }
    }
}

/// Below this many outputs a split costs more than it saves (a pool's
/// wake-up is microseconds; a decode step's smallest products are 576
/// outputs of 576 weights each).
const MIN_SPLIT_OUTPUTS: usize = 256;

/// Runs of tiles per thread, one row (decoding) or several (a prompt):
/// a prompt's products take long enough that smaller runs balance out when
/// the browser's own threads take a core for a while; a decoding step's are
/// too short to pay for more than one hand-over per thread.
const RUNS_PER_THREAD: [usize; 2] = [1, 3];

/// The runs: (product, first weight row, end), each whole tiles of one product.
fn runs(m: usize, ns: &[usize], tiles: usize) -> Vec<(usize, usize, usize)> {
    let per_run = tiles.div_ceil(threads() * RUNS_PER_THREAD[(m > 1) as usize]) * TILE;
    let mut runs = Vec::new();
    for (p, &n) in ns.iter().enumerate() {
        for j0 in (0..n).step_by(per_run) {
            runs.push((p, j0, (j0 + per_run).min(n)));
        }
    }
    runs
}

/// The output memory, shared with the pool: run i writes only its own
/// columns (one row) or its own buffer (several rows).
struct Shared<T>(*mut T);
// SAFETY: every use writes memory no other run touches (see `split`).
unsafe impl<T> Sync for Shared<T> {}
impl<T> Shared<T> {
    /// SAFETY: `i` within the allocation, and element i used by one run only.
    #[allow(clippy::mut_from_ref)]
    unsafe fn at(&self, i: usize) -> &mut T {
        &mut *self.0.add(i)
    }
}

#[cfg_attr(not(any(not(target_arch = "wasm32"), target_feature = "atomics")), allow(dead_code))]
fn split(m: usize, ns: &[usize], outs: &mut [&mut [f32]], tile: &(impl Fn(usize, usize, usize, &mut [f32], usize, usize) + Sync), tiles: usize) {
    let runs = runs(m, ns, tiles);
    let run_tiles = |p: usize, j0: usize, j1: usize, o: &mut [f32], stride: usize, col0: usize| {
        for t0 in (j0..j1).step_by(TILE) {
            tile(p, t0, (t0 + TILE).min(j1), o, stride, col0);
        }
    };
    if m == 1 {
        // In place: run (p, j0, j1) writes outs[p][j0..j1] only.
        let bases: Vec<Shared<f32>> = outs.iter_mut().map(|o| Shared(o.as_mut_ptr())).collect();
        let one = |i: usize| {
            let (p, j0, j1) = runs[i];
            // SAFETY: j1 <= ns[p] = outs[p].len(); runs' columns are disjoint.
            let o = unsafe { std::slice::from_raw_parts_mut(bases[p].at(j0), j1 - j0) };
            run_tiles(p, j0, j1, o, ns[p], j0);
        };
        return parallel(runs.len(), &one);
    }
    let mut parts: Vec<Vec<f32>> = runs.iter().map(|&(_, j0, j1)| vec![0f32; m * (j1 - j0)]).collect();
    let shared = Shared(parts.as_mut_ptr());
    let one = |i: usize| {
        let (p, j0, j1) = runs[i];
        // SAFETY: part i is used by run i only, and `parts` outlives `parallel`.
        run_tiles(p, j0, j1, unsafe { shared.at(i) }, j1 - j0, j0);
    };
    parallel(runs.len(), &one);
    for (&(p, j0, j1), part) in runs.iter().zip(&parts) {
        let n = ns[p];
        for (r, row) in part.chunks_exact(j1 - j0).enumerate() {
            outs[p][r * n + j0..r * n + j1].copy_from_slice(row);
        }
    }
}

/// Calls `f(i, chunk)` for each chunk of `chunk` values of `out` (in any
/// order, over the threads when `worth_it` and there are several): work
/// whose pieces write disjoint parts of one output (attention's heads).
pub fn for_each_chunk_mut<T: Send>(out: &mut [T], chunk: usize, worth_it: bool, f: impl Fn(usize, &mut [T]) + Sync) {
    for_each_chunk_pair_mut(out, chunk, &mut [], 0, worth_it, |i, a, _: &mut [()]| f(i, a));
}

/// [`for_each_chunk_mut`] over two outputs at once: piece i writes chunk i
/// of `a` (`ca` values) and of `b` (`cb` values, or none when `cb` is 0).
pub fn for_each_chunk_pair_mut<A: Send, B: Send>(a: &mut [A], ca: usize, b: &mut [B], cb: usize, worth_it: bool, f: impl Fn(usize, &mut [A], &mut [B]) + Sync) {
    let n = a.len() / ca.max(1);
    assert!(cb == 0 || b.len() / cb >= n);
    if !worth_it || threads() <= 1 || n < 2 {
        for i in 0..n {
            f(i, &mut a[i * ca..][..ca], &mut b[i * cb..][..cb]);
        }
        return;
    }
    let (pa, pb) = (Shared(a.as_mut_ptr()), Shared(b.as_mut_ptr()));
    parallel(n, &|i| {
        // SAFETY: piece i alone uses a[i * ca..][..ca] and b[i * cb..][..cb], both inside
        // their slices (n * ca <= a.len(), n * cb <= b.len()).
        let (x, y) = unsafe { (std::slice::from_raw_parts_mut(pa.at(i * ca), ca), std::slice::from_raw_parts_mut(pb.at(i * cb), cb)) };
        f(i, x, y)
    });
}

/// `f(0..n)` over the threads; returns when all are done.
#[cfg_attr(not(any(not(target_arch = "wasm32"), target_feature = "atomics")), allow(dead_code))]
fn parallel(n: usize, f: &(dyn Fn(usize) + Sync)) {
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    crate::spin_pool::run(n, f);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each(f);
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    (0..n).for_each(f);
}
