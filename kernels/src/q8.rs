//! Q8_0 (ggml's blocks of 32 quants with one scale) in the kernels' layout,
//! and its dot products (the order is the crate doc's).
//!
//! The layout moves quants in chunks of eight (one i16x8 load):
//! - **Within a row** ([`q8_interleave`], activations and weights): in each
//!   whole group of four blocks, chunk `s` (0..16) holds quants `2s, 2s + 1`
//!   of blocks 0, 1, 2, 3, so one i16x8 dot product adds a pair of each block
//!   to its own lane. Two blocks left past the whole groups are a pair (chunk
//!   `s` of 8: quants `4s, 4s + 1` of blocks 0, 1, then `4s + 2, 4s + 3` of
//!   both); a last odd block stays as it is.
//! - **Weight rows in fours** ([`q8_weights`]): chunk `s` of rows `4q..4q + 4`
//!   side by side, so a decoding step that reads four rows at once reads
//!   one stream from memory (four separate rows read 25-35% slower).

use crate::Q8_BLOCK;

/// Blocks per group of the layout, and running sums of the order.
pub const Q8_GROUP: usize = 4;
/// Quants per chunk (one i16x8 load).
const CHUNK: usize = 8;
/// Weight rows stored side by side, and so the weight chunks' stride.
const ROWS: usize = 4;
const STRIDE: usize = ROWS * CHUNK;

/// Where quant `i` (natural order) of a row of `k` sits within the row.
fn row_position(i: usize, k: usize) -> usize {
    const SPAN: usize = Q8_GROUP * Q8_BLOCK;
    let full = k / SPAN * SPAN;
    let (block, e) = ((i - i / SPAN * SPAN) / Q8_BLOCK, i % Q8_BLOCK);
    if i < full {
        i / SPAN * SPAN + (e / 2) * 2 * Q8_GROUP + block * 2 + e % 2
    } else if (k - full) / Q8_BLOCK >= 2 && block < 2 {
        full + (e / 4) * 8 + (e % 4 / 2) * 4 + block * 2 + e % 2
    } else {
        i
    }
}

/// Rows of quants (natural order, rows of `k`) into the within-row layout,
/// as `T` (i16 for activations: widened once per product, not per weight row).
pub fn q8_interleave<T: Copy + From<i8>>(q: &[i8], k: usize, out: &mut [T]) {
    assert!(q.len() == out.len() && k % Q8_BLOCK == 0 && q.len() % k.max(1) == 0);
    const SPAN: usize = Q8_GROUP * Q8_BLOCK;
    let full = k / SPAN * SPAN;
    for (row, o) in q.chunks_exact(k).zip(out.chunks_exact_mut(k)) {
        // Whole groups with fixed offsets (every product's activations pass here).
        for (src, dst) in row[..full].chunks_exact(SPAN).zip(o[..full].chunks_exact_mut(SPAN)) {
            for (s, pairs) in dst.chunks_exact_mut(2 * Q8_GROUP).enumerate() {
                for b in 0..Q8_GROUP {
                    pairs[2 * b] = src[b * Q8_BLOCK + 2 * s].into();
                    pairs[2 * b + 1] = src[b * Q8_BLOCK + 2 * s + 1].into();
                }
            }
        }
        for i in full..k {
            o[row_position(i, k)] = row[i].into();
        }
    }
}

/// Where quant `i` of weight row `j` (rows of `k`) sits in [`q8_weights`].
pub fn q8_weight_position(j: usize, i: usize, k: usize) -> usize {
    let at = row_position(i, k);
    (j / ROWS) * ROWS * k + (at / CHUNK) * STRIDE + (j % ROWS) * CHUNK + at % CHUNK
}

/// Weight quants (natural order, `n` rows of `k`) in the kernels' layout:
/// rows in fours, the last four padded with zero rows.
pub fn q8_weights(q: &[i8], k: usize) -> Vec<i8> {
    let mut laid = Vec::with_capacity(q8_weights_len(q.len(), k));
    laid.extend_from_slice(q);
    q8_weights_in_place(&mut laid, k);
    laid
}

/// The length of `n * k` quants in [`q8_weights`]' layout (reserve it, and
/// [`q8_weights_in_place`] needs no second copy of a matrix).
pub fn q8_weights_len(len: usize, k: usize) -> usize {
    len.div_ceil(ROWS * k.max(1)) * ROWS * k
}

/// [`q8_weights`] in place, four rows at a time (a load never holds a
/// matrix twice; the padding fits the capacity [`q8_weights_len`] reserves).
pub fn q8_weights_in_place(q: &mut Vec<i8>, k: usize) {
    assert!(k % Q8_BLOCK == 0 && q.len() % k.max(1) == 0);
    q.resize(q8_weights_len(q.len(), k), 0);
    // Each row interleaved within itself (`q8_interleave`'s fixed offsets;
    // a position computed per quant made loading a fifth slower), then its
    // chunks spread to every fourth slot.
    let mut four = vec![0i8; ROWS * k];
    for quad in q.chunks_exact_mut(ROWS * k) {
        q8_interleave(quad, k, &mut four);
        for (r, row) in four.chunks_exact(k).enumerate() {
            for (c, chunk) in row.chunks_exact(CHUNK).enumerate() {
                quad[c * STRIDE + r * CHUNK..][..CHUNK].copy_from_slice(chunk);
            }
        }
    }
}

/// Weight row `j` of [`q8_weights`]: its chunk `s` is `row[s * 32..][..8]`.
#[inline(always)]
pub fn q8_weight_row(q: &[i8], j: usize, k: usize) -> &[i8] {
    &q[(j / ROWS) * ROWS * k + (j % ROWS) * CHUNK..][..(k / CHUNK - 1) * STRIDE + CHUNK]
}

/// The exact integer sums of the blocks of the group from block `first`
/// (`blocks` of them): activation chunks every 8, weight chunks every 32.
#[inline(always)]
fn group_sums(x: &[i16], w: &[i8], first: usize, blocks: usize) -> [i32; Q8_GROUP] {
    // Lanes of eight products, written 8 wide so the compiler vectorises them.
    let lanes = |chunk: usize, chunks: usize| {
        let mut p = [0i32; CHUNK];
        for c in chunk..chunk + chunks {
            let (xs, ws) = (&x[c * CHUNK..][..CHUNK], &w[c * STRIDE..][..CHUNK]);
            for l in 0..CHUNK {
                p[l] += xs[l] as i32 * ws[l] as i32;
            }
        }
        p
    };
    let per_block = Q8_BLOCK / CHUNK;
    let mut sums = [0i32; Q8_GROUP];
    let chunk = first * per_block;
    if blocks == Q8_GROUP {
        let p = lanes(chunk, Q8_GROUP * per_block);
        for b in 0..Q8_GROUP {
            sums[b] = p[2 * b] + p[2 * b + 1];
        }
        return sums;
    }
    let mut single = 0;
    if blocks >= 2 {
        let p = lanes(chunk, 2 * per_block);
        for b in 0..2 {
            sums[b] = p[2 * b] + p[2 * b + 1] + p[4 + 2 * b] + p[5 + 2 * b];
        }
        single = 2;
    }
    if blocks % 2 == 1 {
        sums[blocks - 1] = lanes(chunk + single * per_block, per_block).iter().sum();
    }
    sums
}

/// Σ over blocks of an activation row `(x, xd)` (quants widened to i16, in
/// the within-row layout) and a weight row `(w, wd)` ([`q8_weight_row`]), in
/// the fixed order (crate doc); portable version.
pub fn dot_q8_portable(x: &[i16], xd: &[f32], w: &[i8], wd: &[f32]) -> f32 {
    let blocks = wd.len();
    assert!(x.len() == blocks * Q8_BLOCK && xd.len() == blocks && w.len() == (x.len() / CHUNK - 1) * STRIDE + CHUNK);
    let mut acc = [0f32; Q8_GROUP];
    let whole = blocks / Q8_GROUP * Q8_GROUP;
    let partial = (whole < blocks).then_some(whole);
    for first in partial.into_iter().chain((0..whole).step_by(Q8_GROUP)) {
        let n = (blocks - first).min(Q8_GROUP);
        let sums = group_sums(x, w, first, n);
        for l in 0..Q8_GROUP {
            let scale = if l < n { xd[first + l] * wd[first + l] } else { 0.0 };
            acc[l] = acc[l] + sums[l] as f32 * scale;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// [`dot_q8_portable`] of `R` activation rows with `C` weight rows
/// (`out[row][col]`), each output the same bits as alone: wasm SIMD in the
/// browser (every loaded, widened chunk serves all its uses), portable elsewhere.
#[inline(always)]
pub fn dot_q8_tile<const R: usize, const C: usize>(x: [&[i16]; R], xd: [&[f32]; R], w: [&[i8]; C], wd: [&[f32]; C]) -> [[f32; C]; R] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::simd::dot_q8_tile(x, xd, w, wd);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    return core::array::from_fn(|r| core::array::from_fn(|c| dot_q8_portable(x[r], xd[r], w[c], wd[c])));
}

/// One activation row with one weight row: [`dot_q8_tile`] of 1 × 1.
#[inline(always)]
pub fn dot_q8(x: &[i16], xd: &[f32], w: &[i8], wd: &[f32]) -> f32 {
    dot_q8_tile([x], [xd], [w], [wd])[0][0]
}
