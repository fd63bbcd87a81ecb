//! Step 2 of the flow: text <-> token ids, with the `tokenizers` crate.
//!
//! A checkpoint brings its `tokenizer.json`. A lone GGUF file carries its
//! vocabulary and merges in its metadata; [`TextTokenizer::from_gguf`] rebuilds
//! the same tokenizer from them with the crate's own builders. Why by hand:
//! candle's `TokenizerFromGguf` is native-only and does not know the "smollm"
//! pre-tokenizer, which splits digits one by one before the byte-level split
//! ("2024" is four tokens); without that, numbers encode differently from
//! transformers and llama.cpp.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::error::{EngineError, Result};

/// A tokenizer plus the ids the generation loop cares about.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

fn tok_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Tokenizer(e.to_string())
}

impl TextTokenizer {
    /// From a Hugging Face `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // tokenizers unwraps the result of reading its `decoder` part: any
        // error there (bad syntax, bytes that are not UTF-8, a number out of
        // range, nesting too deep) panics instead of failing. So the whole
        // file is parsed as JSON first, which fails on each of these in words
        // (found by tests/fuzz_loaders.rs; a parse of a few milliseconds).
        serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| EngineError::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| EngineError::Tokenizer(format!("tokenizer.json: {e}")))?;
        // A file's truncation would silently cut prompts (or panic when its
        // stride is not below max_length) and its padding could ask for 10^8
        // tokens: the engine checks prompt lengths itself, so both go.
        inner.with_truncation(None).map_err(|e| EngineError::Tokenizer(format!("tokenizer.json: {e}")))?;
        inner.with_padding(None);
        Ok(Self::warmed(inner))
    }

    /// From the `tokenizer.ggml.*` metadata of a GGUF file (byte-level BPE only).
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let get = |key: &str| ct.metadata.get(key).ok_or_else(|| EngineError::Tokenizer(format!("GGUF metadata {key} is missing")));
        let strings = |key: &str| -> Result<Vec<String>> {
            get(key)?.to_vec().map_err(tok_err)?.iter().map(|v| v.to_string().cloned().map_err(tok_err)).collect()
        };
        let kind = get("tokenizer.ggml.model")?.to_string().map_err(tok_err)?;
        if kind != "gpt2" {
            return Err(EngineError::Tokenizer(format!(
                "GGUF tokenizer type \"{kind}\" is not supported (only byte-level BPE, \"gpt2\")"
            )));
        }
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| tok_err(format!("bad merge \"{m}\""))))
            .collect::<Result<_>>()?;
        let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(tok_err)?;
        let mut inner = Tokenizer::new(bpe);

        let pre = ct.metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map(String::as_str).unwrap_or("gpt2");
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            // tokenizer.json of SmolLM / StarCoder: Sequence[Digits(individual), ByteLevel]
            "smollm" | "starcoder" | "refact" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            "gpt2" | "default" => byte_level.into(),
            other => {
                return Err(EngineError::Tokenizer(format!(
                    "GGUF pre-tokenizer \"{other}\" is not supported; give the checkpoint's tokenizer.json instead"
                )))
            }
        };
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        // Control tokens (type 3) and user-defined ones (type 4) are matched whole
        // in the text, so "<|im_start|>" written by the template is one token.
        let types: Vec<u32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a.iter().map(|v| v.to_i32().map(|t| t as u32).or_else(|_| v.to_u32()).unwrap_or(1)).collect(),
            _ => vec![],
        };
        let specials: Vec<AddedToken> = types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, 3 | 4))
            .filter_map(|(i, _)| tokens.get(i))
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        inner.add_special_tokens(specials).map_err(tok_err)?;
        Ok(Self::warmed(inner))
    }

    /// tokenizers compiles its byte-level split pattern on the first encode
    /// (a lazy static, ~20 ms in the browser): done here, at load, so the
    /// first question's time to first token does not pay it.
    fn warmed(inner: Tokenizer) -> Self {
        let _ = inner.encode("Hi", false);
        Self { inner }
    }

    /// Encodes text as the model reads it: no BOS added, special tokens written
    /// in the text (`<|im_start|>`) parsed as single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, false).map_err(tok_err)?.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// The id of a token given by its text, e.g. `<|im_end|>`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The readable text of one token (for "token pieces" views).
    pub fn piece(&self, id: u32) -> String {
        self.inner.decode(&[id], false).unwrap_or_default()
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.inner.id_to_token(id).is_some_and(|t| self.inner.get_added_vocabulary().is_special_token(&t))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Serialized `tokenizer.json` (used to write checkpoints from a GGUF).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(tok_err)
    }

    pub fn stream(&self) -> DecodeStream {
        DecodeStream::default()
    }
}

/// Turns generated ids into text chunks as they arrive, holding back bytes
/// of a multi-byte character until it is complete (state for the crate's
/// `step_decode_stream`, owned here so it can live across worker ticks).
#[derive(Default, Clone)]
pub struct DecodeStream {
    ids: Vec<u32>,
    prefix: String,
    prefix_index: usize,
}

impl DecodeStream {
    /// The new text that `id` completes (empty while a character is still partial).
    pub fn step(&mut self, tokenizer: &TextTokenizer, id: u32) -> Result<String> {
        let chunk = tokenizers::tokenizer::step_decode_stream(
            &tokenizer.inner,
            vec![id],
            true,
            &mut self.ids,
            &mut self.prefix,
            &mut self.prefix_index,
        )
        .map_err(tok_err)?;
        Ok(chunk.unwrap_or_default())
    }
}
