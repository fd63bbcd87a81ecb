//! The test model, SmolLM2-135M-Instruct.Q4_1.gguf: `THREE_ANSWERS_TEST_GGUF`
//! (scripts/test.sh sets it), else where scripts/fetch-test-model.sh caches it.

use std::path::PathBuf;

fn test_gguf_path() -> PathBuf {
    if let Some(p) = std::env::var_os("THREE_ANSWERS_TEST_GGUF") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("THREE_ANSWERS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/three-answers"));
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn read_test_gguf() -> Vec<u8> {
    let path = test_gguf_path();
    std::fs::read(&path).unwrap_or_else(|e| panic!("test model {} is missing ({e}): run scripts/fetch-test-model.sh", path.display()))
}
