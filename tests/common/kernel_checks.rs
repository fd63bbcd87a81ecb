//! Checks of the engine's kernels and of batch invariance ("one prompt, one
//! answer"), shared by tests/kernels.rs (native: the portable kernels) and
//! tests/web_kernel.rs (in Chromium: the wasm SIMD kernels).

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use three_answers::engine::kernels::{self, Half};
use three_answers::engine::matrix::Matrix;
use three_answers::engine::model::Model;
use three_answers::engine::Precision;

/// A small deterministic generator (no `rand` in the browser test).
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn f64_dot(x: &[f32], w: &[f32]) -> f64 {
    x.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Every finite f16 and bf16 widens bit for bit as the `half` crate converts it.
pub fn every_finite_16_bit_float_widens_exactly() {
    for (kind, reference) in [
        (Half::F16, (|b| half::f16::from_bits(b).to_f32()) as fn(u16) -> f32),
        (Half::Bf16, |b| half::bf16::from_bits(b).to_f32()),
    ] {
        let bits: Vec<u16> = (0..=u16::MAX).filter(|&b| reference(b).is_finite()).collect();
        assert_eq!(bits.len(), match kind { Half::F16 => 65536 - 2048, Half::Bf16 => 65536 - 256 });
        let mut out = vec![0f32; bits.len()];
        kernels::widen(kind, &bits, &mut out); // SIMD (where built) for all but the last few
        for (&b, &f) in bits.iter().zip(&out) {
            assert_eq!(f.to_bits(), reference(b).to_bits(), "{kind:?} bits {b:#06x}");
        }
    }
}

/// Each dot product (SIMD where built) gives the portable version's bits, and
/// is close to an f64 reference. Natively `dot_*` is the portable version;
/// in Chromium this is what makes wasm and native compute the same logits.
pub fn dot_products_equal_the_portable_order_bit_for_bit() {
    let mut rng = Lcg(7);
    for k in [16, 17, 64, 96, 160, 224, 576, 577, 1536] {
        let x = rng.vec(k, 3.0);
        let wf = rng.vec(k, 0.1);
        let (mut o1, mut o2) = (wf.clone(), wf.clone());
        kernels::axpy(0.37, &x, &mut o1);
        kernels::axpy_portable(0.37, &x, &mut o2);
        assert!(o1.iter().zip(&o2).all(|(a, b)| a.to_bits() == b.to_bits()), "axpy k={k}");
        let (f, p) = (kernels::dot_f32(&x, &wf), kernels::dot_f32_portable(&x, &wf));
        assert_eq!(f.to_bits(), p.to_bits(), "f32 k={k}: {f} vs {p}");
        assert!((f as f64 - f64_dot(&x, &wf)).abs() < 1e-4, "f32 k={k}");
        for kind in [Half::F16, Half::Bf16] {
            let bits: Vec<u16> = wf.iter().map(|&v| match kind {
                Half::F16 => half::f16::from_f32(v).to_bits(),
                Half::Bf16 => half::bf16::from_f32(v).to_bits(),
            }).collect();
            let (f, p) = (kernels::dot_half(kind, &x, &bits), kernels::dot_half_portable(kind, &x, &bits));
            assert_eq!(f.to_bits(), p.to_bits(), "{kind:?} k={k}: {f} vs {p}");
            let mut wide = vec![0f32; k];
            kernels::widen_portable(kind, &bits, &mut wide);
            assert_eq!(f.to_bits(), kernels::dot_f32_portable(&x, &wide).to_bits(), "{kind:?} = f32 of the widened weights");
        }
        if k % 32 == 0 {
            q8_tiles_equal_the_portable_order(&mut rng, k, &x, &wf);
        }
    }
    attention_rows_equal_one_call_per_row(&mut rng);
}

/// Attention's per-head kernels over strided rows (a KV cache): the scores
/// are `dot_f32` of each row, the weighted sum is `axpy` row after row.
fn attention_rows_equal_one_call_per_row(rng: &mut Lcg) {
    for hd in [1, 3, 4, 17, 32, 36, 64, 100] {
        for rows in [0, 1, 2, 5, 40] {
            let stride = 3 * hd + 5;
            let m = rng.vec(rows.max(1) * stride, 1.0);
            let q = rng.vec(hd, 2.0);
            let mut scores = vec![0f32; rows];
            kernels::dot_f32_rows(&q, &m, stride, &mut scores);
            for (j, s) in scores.iter().enumerate() {
                let one = kernels::dot_f32_portable(&q, &m[j * stride..][..hd]);
                assert_eq!(s.to_bits(), one.to_bits(), "dot_f32_rows hd={hd} row {j}");
            }
            let a = rng.vec(rows, 0.5);
            let start = rng.vec(hd, 0.1);
            let (mut o1, mut o2) = (start.clone(), start.clone());
            kernels::axpy_rows(&a, &m, stride, &mut o1);
            for (j, &aj) in a.iter().enumerate() {
                kernels::axpy_portable(aj, &m[j * stride..][..hd], &mut o2);
            }
            assert!(o1.iter().zip(&o2).all(|(x, y)| x.to_bits() == y.to_bits()), "axpy_rows hd={hd} rows={rows}");
        }
    }
}

/// Q8_0 in the kernels' layout: every tile shape the products use (4 × 2,
/// 4 × 1, 1 × 4, 1 × 1) gives `dot_q8_portable`'s bits for each output, and
/// the sum is close to the f64 one. k = 64..224 has no whole group of four
/// blocks or one and a partial group; 576 has both; 1536 only whole groups.
fn q8_tiles_equal_the_portable_order(rng: &mut Lcg, k: usize, x: &[f32], wf: &[f32]) {
    let quantize = |v: &[f32]| {
        let (mut q, mut d) = (vec![0i8; v.len()], vec![0f32; v.len() / 32]);
        kernels::quantize_q8(v, &mut q, &mut d);
        (q, d)
    };
    let xs: Vec<Vec<f32>> = (0..4).map(|r| if r == 0 { x.to_vec() } else { rng.vec(k, 3.0) }).collect();
    let ws: Vec<Vec<f32>> = (0..4).map(|c| if c == 0 { wf.to_vec() } else { rng.vec(k, 0.1) }).collect();
    let (mut xq, mut xd, mut wq, mut wd) = (vec![], vec![], vec![], vec![]);
    for v in &xs {
        let (q, d) = quantize(v);
        let mut wide = vec![0i16; k];
        kernels::q8_interleave(&q, k, &mut wide);
        xq.push(wide);
        xd.push(d);
    }
    let mut natural = vec![];
    for v in &ws {
        let (q, d) = quantize(v);
        natural.extend_from_slice(&q);
        wd.push(d);
    }
    let laid = kernels::q8_weights(&natural, k);
    for (i, &value) in natural.iter().enumerate() {
        assert_eq!(laid[kernels::q8_weight_position(i / k, i % k, k)], value, "q8_weight_position k={k} i={i}");
    }
    for c in 0..4 {
        wq.push(kernels::q8_weight_row(&laid, c, k).to_vec());
    }
    let portable = |r: usize, c: usize| kernels::dot_q8_portable(&xq[r], &xd[r], &wq[c], &wd[c]).to_bits();
    let (x4, xd4) = (core::array::from_fn::<_, 4, _>(|r| xq[r].as_slice()), core::array::from_fn::<_, 4, _>(|r| xd[r].as_slice()));
    let (w4, wd4) = (core::array::from_fn::<_, 4, _>(|c| wq[c].as_slice()), core::array::from_fn::<_, 4, _>(|c| wd[c].as_slice()));
    let t42 = kernels::dot_q8_tile(x4, xd4, [w4[0], w4[1]], [wd4[0], wd4[1]]);
    let t41 = kernels::dot_q8_tile(x4, xd4, [w4[2]], [wd4[2]]);
    let [t14] = kernels::dot_q8_tile([x4[3]], [xd4[3]], w4, wd4);
    for r in 0..4 {
        for c in 0..2 {
            assert_eq!(t42[r][c].to_bits(), portable(r, c), "q8 4x2 k={k} ({r}, {c})");
        }
        assert_eq!(t41[r][0].to_bits(), portable(r, 2), "q8 4x1 k={k} row {r}");
        assert_eq!(t14[r].to_bits(), portable(3, r), "q8 1x4 k={k} col {r}");
    }
    let one = kernels::dot_q8(&xq[0], &xd[0], &wq[0], &wd[0]);
    assert_eq!(one.to_bits(), portable(0, 0), "q8 k={k}");
    assert!((one as f64 - f64_dot(x, wf)).abs() < 0.02 * (k as f64).sqrt(), "q8 k={k}: {one} vs {}", f64_dot(x, wf));
}

/// The forward pass's exp (SiLU, softmax, the end-of-text meter): SIMD (where
/// built) gives the portable bits, within 2 ulp of libm's expf where the
/// result is a normal float, and saturates sensibly outside; SiLU · up too.
pub fn exp_is_the_portable_one_and_close_to_libm() {
    let mut xs: Vec<f32> = (0..200_003).map(|i| -100.0 + i as f32 * 0.001).collect();
    xs.extend([0.0, -0.0, 1e-30, -1e-30, 88.0, 88.37, 89.0, -87.0, -87.33, -88.0, -200.0, 200.0, f32::INFINITY, f32::NEG_INFINITY]);
    let mut simd = xs.clone();
    kernels::exp_in_place(&mut simd);
    for (&x, &e) in xs.iter().zip(&simd) {
        assert_eq!(e.to_bits(), kernels::exp_portable(x).to_bits(), "exp({x})");
        let want = libm::expf(x);
        if (-87.3..=88.3).contains(&x) {
            assert!((e - want).abs() <= 2.0 * f32::EPSILON * want, "exp({x}) = {e}, libm {want}");
        } else {
            let (lo, hi) = (libm::expf(-87.34), libm::expf(88.38));
            assert!(e >= lo && e <= hi && (x < 0.0) == (e < 1.0), "exp({x}) = {e} saturates between {lo} and {hi}, libm {want}");
        }
    }
    let mut nan = [f32::NAN; 5];
    kernels::exp_in_place(&mut nan);
    assert!(nan.iter().all(|v| v.is_nan()));
    let gate: Vec<f32> = xs.iter().map(|x| x * 0.3).collect();
    let up: Vec<f32> = xs.iter().map(|x| 1.0 - x * 0.01).collect();
    let mut fused = gate.clone();
    kernels::silu_mul(&mut fused, &up);
    for ((&g, &u), &y) in gate.iter().zip(&up).zip(&fused) {
        assert_eq!(y.to_bits(), (g / (1.0 + kernels::exp_portable(-g)) * u).to_bits(), "silu({g}) * {u}");
        let want = g / (1.0 + libm::expf(-g)) * u;
        assert!(!want.is_finite() || (y - want).abs() <= 1e-6 * want.abs().max(1e-30), "silu({g}) * {u} = {y}, libm {want}");
    }
}

/// Activations are quantized exactly as ggml (candle's Q8_0 blocks) does it.
pub fn q8_quantization_equals_ggml_blocks() {
    let mut rng = Lcg(11);
    let x = rng.vec(576, 5.0);
    let ours = Matrix::q8_from_f32(1, 576, &x, "x").unwrap();
    let ggml = QTensor::quantize(&Tensor::from_vec(x.clone(), (1, 576), &Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap();
    let theirs = Matrix::from_blocks(&ggml, "x").unwrap();
    let (mut a, mut b) = (vec![0f32; 576], vec![0f32; 576]);
    ours.row(0, &mut a).unwrap();
    theirs.row(0, &mut b).unwrap();
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

/// The SIMD quantizer (where built) gives the portable one's quants and
/// scales, ties (x / d exactly k + 1/2, both signs), zeros, tiny and huge
/// values and NaN included.
pub fn q8_quantization_rounds_as_the_portable_version() {
    let mut rng = Lcg(17);
    let mut x = rng.vec(32 * 64, 3.0);
    // Block 0: amax 127 gives d = 1 exactly, so every k + 0.5 is a tie.
    for (i, v) in x[..32].iter_mut().enumerate() {
        *v = if i == 0 { 127.0 } else { (i as f32 - 16.0) + 0.5 };
    }
    x[32..64].fill(0.0);
    for (i, v) in x[64..96].iter_mut().enumerate() {
        *v = (i as f32 - 16.0) * 1e-39; // subnormals
    }
    x[96] = f32::NAN;
    x[128] = 3.0e38;
    x[129] = -3.0e38;
    let (mut q1, mut d1, mut q2, mut d2) = (vec![0i8; x.len()], vec![0f32; x.len() / 32], vec![0i8; x.len()], vec![0f32; x.len() / 32]);
    kernels::quantize_q8(&x, &mut q1, &mut d1);
    kernels::quantize_q8_portable(&x, &mut q2, &mut d2);
    assert_eq!(q1, q2);
    assert_eq!(d1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), d2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_eq!(&q1[..4], &[127, -15, -14, -13], "ties round away from zero");
}

/// f16 rows against activations scaled by 2^112: the same sums as `dot_half`,
/// bit for bit, over every finite f16 (subnormals included) and activations
/// from subnormal to near 2^16; larger or non-finite activations are not scaled.
pub fn f16_prescaled_activations_give_the_same_sums_bit_for_bit() {
    let bits: Vec<u16> = (0..=u16::MAX).filter(|&b| half::f16::from_bits(b).is_finite()).collect();
    let k = 577; // not a multiple of the SIMD width: the tail is exercised
    let x: Vec<f32> = (0..k)
        .map(|i| {
            let v = ((i * 7919) % 1000) as f32 / 37.0 - 13.0;
            match i % 5 {
                0 => v * 1e-40, // f32 subnormals
                1 => v * 2400.0, // up to ~ 2^15
                _ => v,
            }
        })
        .collect();
    let scaled = kernels::prescale_for_f16(&x).expect("every |x| < 2^16");
    for w in bits.chunks_exact(k) {
        let (prescaled, plain) = (kernels::dot_f16_prescaled(&scaled, w), kernels::dot_half(Half::F16, &x, w));
        assert_eq!(prescaled.to_bits(), plain.to_bits(), "{prescaled} vs {plain}");
    }
    for v in [65536.0, -70000.0, f32::NAN, f32::INFINITY] {
        assert!(kernels::prescale_for_f16(&[1.0, v]).is_none(), "{v} must not be scaled");
    }
    assert!(kernels::prescale_for_f16(&[65535.99]).is_some());
}

/// Every matrix form: each row of a batch equals that row multiplied alone,
/// bit for bit, for batch sizes around the tile size; and the result is
/// close to an f64 reference.
pub fn matmul_rows_are_the_same_in_any_batch() {
    let mut rng = Lcg(3);
    let (n, k) = (37, 768); // K-quant blocks are 256 wide
    let w = rng.vec(n * k, 0.1);
    let wt = Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap();
    let bits = |f: fn(f32) -> u16| w.iter().map(|&v| f(v)).collect::<Vec<u16>>();
    let forms: Vec<(&str, Matrix, f64)> = vec![
        ("f32", Matrix::f32(n, k, w.clone()), 1e-4),
        ("f16", Matrix::half(Half::F16, n, k, bits(|v| half::f16::from_f32(v).to_bits())), 0.01),
        ("bf16", Matrix::half(Half::Bf16, n, k, bits(|v| half::bf16::from_f32(v).to_bits())), 0.1),
        ("q8_0", Matrix::q8_from_f32(n, k, &w, "w").unwrap(), 0.5),
        ("q4_1", Matrix::from_blocks(&QTensor::quantize(&wt, GgmlDType::Q4_1).unwrap(), "w").unwrap(), 1.0),
        ("q4k", Matrix::from_blocks(&QTensor::quantize(&wt, GgmlDType::Q4K).unwrap(), "w").unwrap(), 1.0),
    ];
    for m in [1usize, 2, 3, 7, 8, 9, 16, 17, 37] {
        let x = rng.vec(m * k, 2.0);
        for (name, matrix, tolerance) in &forms {
            let batch = matrix.matmul(&x).unwrap();
            for r in 0..m {
                let alone = matrix.matmul(&x[r * k..][..k]).unwrap();
                let row = &batch[r * n..][..n];
                assert!(row.iter().zip(&alone).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}: row {r} of {m} differs from the row alone");
                for j in 0..n {
                    let reference = f64_dot(&x[r * k..][..k], &w[j * k..][..k]);
                    assert!((row[j] as f64 - reference).abs() < *tolerance, "{name}: {} vs {reference}", row[j]);
                }
            }
        }
    }
}

/// A tiny llama GGUF with random weights (2 blocks, 4 heads, 2 key/value
/// heads), its matrices stored as `dtype`: enough to run every kernel of the
/// forward pass where the real model cannot be loaded (the browser test).
pub fn tiny_llama_gguf(dtype: GgmlDType) -> Vec<u8> {
    use gguf_file::Value;
    let (dim, hidden, layers, vocab) = (64usize, 128usize, 2usize, 96usize);
    let mut rng = Lcg(5);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, dtype: GgmlDType| {
        let n = shape.iter().product();
        let t = Tensor::from_vec(rng.vec(n, scale), shape, &Device::Cpu).unwrap();
        tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
    };
    add("token_embd.weight".into(), vec![vocab, dim], 1.0, dtype);
    add("output_norm.weight".into(), vec![dim], 1.0, GgmlDType::F32);
    for i in 0..layers {
        for (part, rows, cols) in [("attn_q", dim, dim), ("attn_k", dim / 2, dim), ("attn_v", dim / 2, dim), ("attn_output", dim, dim), ("ffn_gate", hidden, dim), ("ffn_up", hidden, dim), ("ffn_down", dim, hidden)] {
            add(format!("blk.{i}.{part}.weight"), vec![rows, cols], 0.3, dtype);
        }
        add(format!("blk.{i}.attn_norm.weight"), vec![dim], 1.0, GgmlDType::F32);
        add(format!("blk.{i}.ffn_norm.weight"), vec![dim], 1.0, GgmlDType::F32);
    }
    let metadata = [
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", Value::U32(dim as u32)),
        ("llama.feed_forward_length", Value::U32(hidden as u32)),
        ("llama.block_count", Value::U32(layers as u32)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.attention.head_count_kv", Value::U32(2)),
        ("llama.context_length", Value::U32(256)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
    ];
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).unwrap();
    out.into_inner()
}

/// The logits of every position of `tokens`, read in pieces of the given sizes
/// (each piece re-uses the cache the earlier ones filled), as bits.
pub fn logits_in_pieces(model: &mut Model, tokens: &[u32], pieces: &[usize]) -> Vec<u32> {
    model.clear_cache();
    let mut out = Vec::new();
    let mut at = 0;
    for &len in pieces {
        let logits = model.forward_all(&tokens[at..at + len]).unwrap();
        out.extend(logits.iter().map(|v| v.to_bits()));
        at += len;
    }
    assert_eq!(at, tokens.len());
    out
}

/// Ways to cut `n` tokens: one batch, one by one, around the tile size, and random cuts.
pub fn cuts(n: usize, rng: &mut Lcg) -> Vec<Vec<usize>> {
    let mut ways = vec![vec![n], vec![1; n]];
    for first in [2, 7, 8, 9, 16, 17] {
        if first < n {
            ways.push(vec![first, n - first]);
        }
    }
    let mut random = Vec::new();
    let mut left = n;
    while left > 0 {
        let len = (((rng.next() + 1.0) * 6.0) as usize + 1).min(left);
        random.push(len);
        left -= len;
    }
    ways.push(random);
    ways
}

/// The model's logits at every position are the same bits however the
/// prompt is cut into batches (and so whatever the cache re-used).
pub fn model_logits_are_the_same_in_any_batch(model: &mut Model, tokens: &[u32], label: &str, seed: u64) {
    let mut rng = Lcg(seed);
    let whole = logits_in_pieces(model, tokens, &[tokens.len()]);
    assert!(whole.iter().all(|&b| f32::from_bits(b).is_finite()));
    for pieces in cuts(tokens.len(), &mut rng) {
        let cut = logits_in_pieces(model, tokens, &pieces);
        let first_diff = whole.iter().zip(&cut).position(|(a, b)| a != b);
        assert!(first_diff.is_none(), "{label}: pieces {pieces:?} differ from one batch at logit {first_diff:?}");
    }
}

/// The tiny model at every precision, every stored form.
pub fn tiny_model_logits_are_the_same_in_any_batch() {
    let tokens: Vec<u32> = (0..37).map(|i| (i * 37 + 11) % 96).collect();
    for dtype in [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q8_0, GgmlDType::Q4_1, GgmlDType::Q5_0] {
        let bytes = tiny_llama_gguf(dtype);
        for precision in Precision::ALL {
            let mut model = Model::from_gguf(&bytes, precision).unwrap();
            model_logits_are_the_same_in_any_batch(&mut model, &tokens, &format!("{dtype:?} at {}", precision.name()), 9);
        }
    }
}
