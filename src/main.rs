//! Native CLI over the engine: prints the tutorial's three answers like the
//! notebook does (foundation, the templated prompt, instruct, chat + follow-up).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;

    use clap::builder::{PossibleValuesParser, TypedValueParser};
    use clap::{Parser, ValueEnum};
    use serde::Serialize;
    use three_answers::engine::modes::{Conversation, Prompt, DEFAULT_FOLLOW_UP, DEFAULT_QUESTION};
    use three_answers::engine::{Generation, LanguageModel, Precision, Result, SamplingSettings, StopReason, Timings};
    use three_answers::local_files;

    #[derive(Parser)]
    #[command(about = "One question, three answers: foundation, instruct and chat SmolLM2")]
    struct Args {
        /// The foundation (base) model: a .gguf file or a checkpoint folder.
        #[arg(long)]
        base: Option<PathBuf>,
        /// The instruct model: a .gguf file or a checkpoint folder.
        #[arg(long)]
        instruct: PathBuf,
        /// auto (fastest faithful form), stored, f32, f16 or q8_0.
        #[arg(long, default_value = "auto", value_parser = precision_parser())]
        precision: Precision,
        /// New tokens for the foundation, instruct and first chat answers.
        #[arg(long, default_value_t = 30)]
        max_new_tokens: usize,
        /// New tokens for the chat follow-up.
        #[arg(long, default_value_t = 40)]
        follow_up_max_new_tokens: usize,
        /// The chat's second question.
        #[arg(long, default_value = DEFAULT_FOLLOW_UP)]
        follow_up: String,
        /// A system prompt for the chat (default: the template's own).
        #[arg(long)]
        system: Option<String>,
        /// Sample instead of greedy decoding.
        #[arg(long)]
        do_sample: bool,
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        #[arg(long, default_value_t = 1.0)]
        repetition_penalty: f32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write a Hugging Face checkpoint folder made from the --instruct
        /// GGUF file into this folder, then exit (for tests, benchmarks and mirror folders).
        #[arg(long)]
        export_checkpoint: Option<PathBuf>,
        /// The float type of an exported checkpoint: f32, f16 or bf16 (the official checkpoints' type).
        #[arg(long, value_enum, default_value_t = ExportDtype::F32)]
        export_dtype: ExportDtype,
        /// Benchmark instead: prefill the templated question, then decode this
        /// many tokens greedily ignoring end-of-text; 3 runs, medians, one JSON line.
        #[arg(long)]
        bench: Option<usize>,
        /// A branch, as the page's candidates make one: the foundation and
        /// instruct answers start with these token ids (comma-separated),
        /// then go on as usual.
        #[arg(long, value_delimiter = ',')]
        force_ids: Vec<u32>,
        /// Threads the matrix products split their weight rows over (every
        /// weight form, a prompt or one row). The answer is the same bits at
        /// any count.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[arg(default_value = DEFAULT_QUESTION)]
        question: String,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum ExportDtype {
        F32,
        F16,
        Bf16,
    }

    /// The engine's precision names, checked and listed by clap.
    fn precision_parser() -> impl TypedValueParser<Value = Precision> {
        PossibleValuesParser::new(Precision::ALL.map(Precision::name)).map(|s| Precision::from_name(&s).expect("one of the listed names"))
    }

    /// One answer, as `--json` prints it.
    #[derive(Serialize)]
    struct Turn {
        prompt: String,
        text: String,
        token_ids: Vec<u32>,
        stop_reason: Option<StopReason>,
        /// P(end of text) at each step (the end-of-text meter's values).
        end_probs: Vec<f32>,
        timings: Timings,
    }

    impl Turn {
        fn new(prompt: String, g: &Generation) -> Self {
            Self {
                prompt,
                text: g.text().to_string(),
                token_ids: g.generated_ids().to_vec(),
                stop_reason: g.stop_reason(),
                end_probs: g.end_probs().to_vec(),
                timings: g.timings().clone(),
            }
        }
    }

    #[derive(Serialize)]
    struct Report {
        base_is_instruct_stand_in: bool,
        precision: Precision,
        foundation: Turn,
        instruct: Turn,
        chat: Vec<Turn>,
    }

    pub fn run() -> Result<()> {
        let a = Args::parse();
        let precision = a.precision;
        three_answers::engine::kernels::batch::set_threads(a.threads);
        if let Some(dir) = &a.export_checkpoint {
            let gguf = std::fs::read(&a.instruct)
                .map_err(|e| three_answers::engine::EngineError::MissingFile(format!("{} ({e})", a.instruct.display())))?;
            let dtype = match a.export_dtype {
                ExportDtype::F32 => candle_core::DType::F32,
                ExportDtype::F16 => candle_core::DType::F16,
                ExportDtype::Bf16 => candle_core::DType::BF16,
            };
            local_files::write_checkpoint_from_gguf(&gguf, dir, dtype)?;
            println!("wrote {}", dir.display());
            return Ok(());
        }
        let settings = |max_new_tokens| SamplingSettings {
            max_new_tokens,
            do_sample: a.do_sample,
            temperature: a.temperature,
            top_p: a.top_p,
            top_k: a.top_k,
            repetition_penalty: a.repetition_penalty,
            seed: a.seed,
            ..SamplingSettings::default()
        };
        let say = |s: String| {
            if !a.json {
                println!("{s}")
            }
        };

        let load_started = std::time::Instant::now();
        let mut instruct = local_files::load(&a.instruct, precision)?;
        if let Some(n) = a.bench {
            return bench(&mut instruct, &a.question, n, load_started.elapsed().as_secs_f64() * 1000.0);
        }
        let mut base = match &a.base {
            Some(p) => Some(local_files::load(p, precision)?),
            None => None,
        };

        // 1. Foundation: the raw string, continued.
        let prompt = Prompt::Raw(a.question.clone()).text(&instruct)?;
        let foundation_model: &mut LanguageModel = base.as_mut().unwrap_or(&mut instruct);
        let g = answer(foundation_model, &prompt, settings(a.max_new_tokens), &a.force_ids)?;
        if a.base.is_none() {
            say("note: no --base given; the INSTRUCT weights stand in for the foundation model.".into());
        }
        say(format!("== Foundation (raw string) ==\n{}{}\n", prompt, describe(&g)));
        let foundation = Turn::new(prompt, &g);

        // 2. Instruct: the templated prompt, shown before the answer.
        let prompt = Prompt::Instruct(a.question.clone()).text(&instruct)?;
        say(format!("== Templated prompt ==\n{prompt}"));
        let g = answer(&mut instruct, &prompt, settings(a.max_new_tokens), &a.force_ids)?;
        say(format!("== Instruct ==\n{}\n", describe(&g)));
        let instruct_turn = Turn::new(prompt, &g);

        // 3. Chat: a growing list of messages; the follow-up re-uses the KV cache.
        let mut chat = Conversation::new(a.system.clone());
        let mut turns = vec![];
        for (question, max) in [(&a.question, a.max_new_tokens), (&a.follow_up, a.follow_up_max_new_tokens)] {
            chat.user(question);
            let prompt = chat.prompt(&instruct)?;
            let g = instruct.generate(&prompt, settings(max))?;
            say(format!("== Chat ==\nuser: {question}\nassistant: {}\n", describe(&g)));
            chat.assistant(&instruct.tokenizer.decode(g.generated_ids(), true)?);
            turns.push(Turn::new(prompt, &g));
        }

        if a.json {
            let report = Report {
                base_is_instruct_stand_in: a.base.is_none(),
                precision,
                foundation,
                instruct: instruct_turn,
                chat: turns,
            };
            println!("{}", serde_json::to_string_pretty(&report).expect("plain data serializes"));
        }
        Ok(())
    }

    /// One answer to `prompt`, starting with `forced` (a branch) when given.
    fn answer(model: &mut LanguageModel, prompt: &str, settings: SamplingSettings, forced: &[u32]) -> Result<Generation> {
        if forced.is_empty() {
            return model.generate(prompt, settings);
        }
        let ids = model.tokenizer.encode(prompt)?;
        let (mut g, _) = model.start_branch(ids, forced, settings)?;
        while let three_answers::engine::Step::Token { .. } = model.next_token(&mut g)? {}
        Ok(g)
    }

    fn bench(model: &mut LanguageModel, question: &str, new_tokens: usize, load_ms: f64) -> Result<()> {
        let prompt = Prompt::Instruct(question.to_string()).text(model)?;
        let mut runs = vec![];
        for _ in 0..3 {
            model.reset();
            let s = SamplingSettings { ignore_eos: true, ..SamplingSettings::greedy(new_tokens) };
            runs.push(model.generate(&prompt, s)?.timings().clone());
        }
        let median = |f: &dyn Fn(&Timings) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        // A 10-turn chat: with the KV cache re-used, the time to the first token
        // of each turn follows the new turn's length, not the history's.
        model.reset();
        let mut chat = Conversation::new(None);
        let mut turns = vec![];
        for i in 0..10 {
            chat.user(&format!("Tell me one fact about the number {}.", i + 1));
            let g = model.generate(&chat.prompt(model)?, SamplingSettings::greedy(24))?;
            chat.assistant(&model.tokenizer.decode(g.generated_ids(), true)?);
            let t = g.timings();
            turns.push(serde_json::json!({"prompt_tokens": t.prompt_tokens, "reused_tokens": t.reused_tokens, "prefill_ms": t.prefill_ms}));
        }
        let report = serde_json::json!({
            "chat_turns": turns,
            "engine": "three-answers",
            "precision": model.precision,
            "threads": three_answers::engine::kernels::batch::threads(),
            "load_ms": load_ms,
            "prompt_tokens": runs[0].prompt_tokens,
            "prefill_tok_s": median(&|t| t.prefill_tok_per_s()),
            "decode_tok_s": median(&|t| t.decode_tok_per_s()),
            "weight_bytes": model.weight_bytes(),
        });
        println!("{report}");
        Ok(())
    }

    /// The answer's text, or words for an empty one, and its speed.
    fn describe(g: &Generation) -> String {
        let t = g.timings();
        let text = match (g.text().trim().is_empty(), g.stop_reason()) {
            (true, Some(StopReason::EndOfText)) => "[the model ended its answer at once: its first token was end-of-text]".to_string(),
            _ => g.text().to_string(),
        };
        let cut = if g.stop_reason() == Some(StopReason::MaxNewTokens) { " [cut at max_new_tokens]" } else { "" };
        format!(
            "{text}{cut}\n  ({} prompt tokens, {} re-used from cache, prefill {:.0} tok/s; {} new tokens at {:.1} tok/s)",
            t.prompt_tokens,
            t.reused_tokens,
            t.prefill_tok_per_s(),
            t.generated_tokens,
            t.decode_tok_per_s()
        )
    }
}
