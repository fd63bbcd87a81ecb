//! Products split over threads (the CLI's `--threads`; natively rayon's pool)
//! give the same bits as one thread: each output is still one dot product,
//! only the tiles of weight rows are shared out. Its own test binary, since
//! the thread count is process-wide.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use three_answers::engine::kernels::batch::set_threads;
use three_answers::engine::kernels::Half;
use three_answers::engine::matrix::Matrix;
use three_answers::engine::{LanguageModel, ModelFiles, Precision, SamplingSettings};

#[path = "common/test_model.rs"]
mod test_model;

#[test]
fn products_and_the_real_model_give_the_same_bits_on_one_or_two_threads() {
    // A matrix of many tiles (1000 rows: 62 full tiles and a partial one), every batch shape.
    let (n, k) = (1000, 576);
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919 % 1001) as f32 / 1001.0 - 0.5) * 0.2).collect();
    let bf16 = w.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
    let f16 = w.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
    let q4_1 = QTensor::quantize(&Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap(), GgmlDType::Q4_1).unwrap();
    let forms = [
        ("q8_0", Matrix::q8_from_f32(n, k, &w, "w").unwrap()),
        ("f32", Matrix::f32(n, k, w.clone())),
        ("bf16", Matrix::half(Half::Bf16, n, k, bf16)),
        ("f16", Matrix::half(Half::F16, n, k, f16)),
        ("q4_1", Matrix::from_blocks(&q4_1, "w").unwrap()),
    ];
    for (name, matrix) in &forms {
        for m in [1usize, 2, 3, 4, 5, 9, 37] {
            let x: Vec<f32> = (0..m * k).map(|i| (i * 104729 % 997) as f32 / 250.0 - 2.0).collect();
            set_threads(1);
            let one = matrix.matmul(&x).unwrap();
            set_threads(2);
            let two = matrix.matmul(&x).unwrap();
            assert!(one.iter().zip(&two).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}, {m} rows: two threads changed a product");
        }
    }

    // The test model at `auto` (Q8_0): the instruct answer, token for token.
    let bytes = test_model::read_test_gguf();
    let answer = |threads: usize| {
        set_threads(threads);
        let mut model = LanguageModel::load(ModelFiles::Gguf(&bytes), Precision::Auto).unwrap();
        let prompt = model.chat_prompt(&[three_answers::engine::Message::user("What is the capital of France?")], true).unwrap();
        let g = model.generate(&prompt, SamplingSettings { ignore_eos: true, ..SamplingSettings::greedy(48) }).unwrap();
        (g.generated_ids().to_vec(), g.text().to_string())
    };
    let (one, two) = (answer(1), answer(2));
    assert_eq!(one.0.len(), 48);
    assert_eq!(one, two, "the answer changed with the thread count");
}
