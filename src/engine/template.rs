//! Step 3 of the flow: messages -> the prompt string, with the checkpoint's own
//! chat template (Jinja, rendered by minijinja).
//!
//! The template is data from the model file: it is untrusted, so rendering is
//! bounded by minijinja's fuel and an output size limit, and any failure is an
//! [`EngineError::Template`], never a panic.

use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};

/// One role-tagged message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// "system", "user" or "assistant".
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.into(), content: content.into() }
    }
    pub fn system(content: &str) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: &str) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: &str) -> Self {
        Self::new("assistant", content)
    }
}

/// Fuel for one render: plenty for real chat templates over long chats, far
/// too little for a template that loops forever.
const TEMPLATE_FUEL: u64 = 2_000_000;
/// A rendered prompt larger than this is refused (no model reads that much).
const MAX_PROMPT_BYTES: usize = 4 << 20;

/// A chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    pub bos_token: String,
    pub eos_token: String,
}

impl ChatTemplate {
    /// Compiles the template once to report syntax errors at load time.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let t = Self { source: source.into(), bos_token: bos_token.into(), eos_token: eos_token.into() };
        t.environment()?;
        Ok(t)
    }

    /// From `tokenizer_config.json`: `chat_template` is a string, or a list of
    /// `{name, template}` where the one named "default" is used. None: no template.
    pub fn from_tokenizer_config(bytes: &[u8]) -> Result<Option<Self>> {
        let cfg: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| EngineError::BadConfig { file: "tokenizer_config.json".into(), detail: e.to_string() })?;
        let token = |key: &str| match &cfg[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).unwrap_or_default().to_string(),
            _ => String::new(),
        };
        let source = match &cfg["chat_template"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(list) => {
                let named = |name: &str| list.iter().find(|t| t["name"] == name).and_then(|t| t["template"].as_str());
                match named("default").or_else(|| list.first().and_then(|t| t["template"].as_str())) {
                    Some(s) => s.to_string(),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Self::new(&source, &token("bos_token"), &token("eos_token")).map(Some)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>> {
        let mut env = minijinja::Environment::new();
        // As transformers' apply_chat_template configures Jinja.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(64);
        // Python string/list/dict methods (`.strip()`, `.items()`, ...) used
        // by Hub templates, behind the same size checks as the filters.
        env.set_unknown_method_callback(|state, value, method, args| {
            check_sizes(method, std::iter::once(value).chain(args))?;
            minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
        });
        guard_filters(&mut env);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        // The built-in `join` walks any iterable in one instruction (fuel does
        // not see it): `([0] * 4000000000) | join` would allocate gigabytes.
        env.add_filter("join", bounded_join);
        env.add_template("chat", &self.source).map_err(|e| EngineError::Template(e.to_string()))?;
        Ok(env)
    }

    /// The prompt string the model receives for `messages`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let env = self.environment()?;
        let tmpl = env.get_template("chat").map_err(|e| EngineError::Template(e.to_string()))?;
        // Written into a capped buffer: rendering stops at the first write past the cap.
        let mut out = Capped(Vec::new());
        WORK.with(|w| w.set(0));
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        if let Err(e) = tmpl.render_captured_to(ctx, &mut out) {
            return Err(match out.0.len() >= MAX_PROMPT_BYTES {
                true => EngineError::Template(format!("it produced more than {MAX_PROMPT_BYTES} bytes")),
                false => EngineError::Template(e.to_string()),
            });
        }
        String::from_utf8(out.0).map_err(|e| EngineError::Template(e.to_string()))
    }
}

/// A writer that refuses to grow past [`MAX_PROMPT_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_PROMPT_BYTES {
            self.0.resize(MAX_PROMPT_BYTES, 0); // marks the overflow for `render`
            return Err(std::io::Error::other("the rendered prompt is too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Items a template's `join` (or any filter) may walk.
const MAX_JOIN_ITEMS: usize = 100_000;
/// Items and characters the size-checked filters and methods may walk in one
/// render, all calls together. Fuel counts instructions, not what one
/// instruction walks: 10^5 loop turns each summing 10^5 items pass both the
/// fuel and the per-call checks, yet take minutes (found by fuzzing).
const MAX_RENDER_WORK: u64 = 64 << 20;

thread_local! {
    /// What this thread's current render has walked so far (reset by `render`).
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
/// A width or count a filter may be given (`center`, `indent`, `batch`, ...).
const MAX_COUNT: i64 = 100_000;

/// Refuses, before any work, a filter or method call that could take
/// gigabytes or minutes in one instruction (fuel counts instructions):
/// a sequence of more than [`MAX_JOIN_ITEMS`] items, a string longer than
/// [`MAX_PROMPT_BYTES`], a count over [`MAX_COUNT`], or a `replace` whose
/// result could outgrow the prompt cap. Real chat templates come nowhere near.
fn check_sizes<'a>(name: &str, args: impl IntoIterator<Item = &'a minijinja::Value>) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    let refuse = |what: String| Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("{name}: {what}, too much for a chat prompt")));
    let args: Vec<&minijinja::Value> = args.into_iter().collect();
    for v in &args {
        match v.kind() {
            ValueKind::String if v.as_str().is_some_and(|s| s.len() > MAX_PROMPT_BYTES) => return refuse("a string over 4 MiB".into()),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map if v.len().is_some_and(|n| n > MAX_JOIN_ITEMS) => {
                return refuse(format!("{} items", v.len().unwrap_or(0)))
            }
            ValueKind::Number if i64::try_from((*v).clone()).is_ok_and(|n| n > MAX_COUNT) => return refuse(format!("the number {v}")),
            _ => {}
        }
    }
    let work = args.iter().map(|v| v.len().unwrap_or(1) as u64).fold(0u64, u64::saturating_add);
    let total = WORK.with(|w| {
        w.set(w.get().saturating_add(work));
        w.get()
    });
    if total > MAX_RENDER_WORK {
        return refuse(format!("more than {MAX_RENDER_WORK} items and characters walked in one render"));
    }
    if name == "replace" {
        // The result of s.replace(old, new) is at most len(s) * (len(new) + 1) bytes.
        let len = |i: usize| args.get(i).and_then(|v| v.as_str()).map_or(0, str::len);
        if len(0).saturating_mul(len(2) + 1) > MAX_PROMPT_BYTES {
            return refuse("a replacement that could grow past 4 MiB".into());
        }
    }
    Ok(())
}

/// Every built-in filter that walks a whole sequence or builds a string in
/// one instruction, replaced by itself behind [`check_sizes`]. (The built-in
/// stays registered under a name no template can write, with a space.)
fn guard_filters(env: &mut minijinja::Environment<'_>) {
    use minijinja::filters as f;
    macro_rules! guard {
        ($($name:literal => $filter:path),* $(,)?) => {$(
            env.add_filter(concat!($name, " (built-in)"), $filter);
            env.add_filter($name, |state: &minijinja::State, args: minijinja::value::Rest<minijinja::Value>| {
                check_sizes($name, args.iter())?;
                state.apply_filter(concat!($name, " (built-in)"), &args)
            });
        )*};
    }
    guard! {
        "list" => f::list, "sort" => f::sort, "reverse" => f::reverse, "unique" => f::unique, "sum" => f::sum,
        "min" => f::min, "max" => f::max, "first" => f::first, "last" => f::last, "length" => f::length,
        "batch" => f::batch, "slice" => f::slice, "dictsort" => f::dictsort, "items" => f::items,
        "groupby" => f::groupby, "map" => f::map, "select" => f::select, "reject" => f::reject,
        "selectattr" => f::selectattr, "rejectattr" => f::rejectattr, "chain" => f::chain, "zip" => f::zip,
        "pprint" => f::pprint, "string" => f::string, "lines" => f::lines,
        "split" => f::split, "indent" => f::indent, "replace" => f::replace, "format" => f::format,
    }
}


/// `join` as Jinja's, but refusing to walk more than [`MAX_JOIN_ITEMS`]
/// items or to build more than [`MAX_PROMPT_BYTES`].
fn bounded_join(value: &minijinja::Value, sep: Option<String>) -> std::result::Result<String, minijinja::Error> {
    use minijinja::{Error, ErrorKind};
    let too_big = || Error::new(ErrorKind::InvalidOperation, "join: the list is too long for a chat prompt");
    if value.len().is_some_and(|n| n > MAX_JOIN_ITEMS) {
        return Err(too_big());
    }
    check_sizes("join", [value])?;
    if let Some(s) = value.as_str() {
        return Ok(s.chars().map(String::from).collect::<Vec<_>>().join(sep.as_deref().unwrap_or("")));
    }
    let sep = sep.unwrap_or_default();
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i >= MAX_JOIN_ITEMS || out.len() > MAX_PROMPT_BYTES {
            return Err(too_big());
        }
        if i > 0 {
            out.push_str(&sep);
        }
        out.push_str(&item.to_string());
    }
    Ok(out)
}
