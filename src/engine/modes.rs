//! The tutorial's three ways of asking: what prompt each mode builds.
//!
//! - Foundation: the raw question, no template, no special tokens.
//! - Instruct: one user message through the chat template, with the
//!   assistant cue (`add_generation_prompt`).
//! - Chat: the whole role-tagged history through the template; each turn
//!   appends to it, and the KV cache of the shared prefix is re-used.

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::llm::LanguageModel;
use super::template::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Foundation,
    Instruct,
    Chat,
}

/// The follow-up the tutorial asks in its chat section.
pub const DEFAULT_FOLLOW_UP: &str = "And what is a famous landmark there?";
/// The tutorial's question.
pub const DEFAULT_QUESTION: &str = "What is the capital of France?";

/// What one answer is asked: the mode and its input, as the page sends it to
/// the worker. Only [`Prompt::text`] turns it into the string the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "input", rename_all = "snake_case")]
pub enum Prompt {
    /// Foundation: the text itself, continued as is.
    Raw(String),
    /// Instruct: one user message, templated, ending with the assistant cue.
    Instruct(String),
    /// Chat: the conversation so far, ending with the user's new message.
    Chat(Conversation),
}

impl Prompt {
    pub fn mode(&self) -> Mode {
        match self {
            Prompt::Raw(_) => Mode::Foundation,
            Prompt::Instruct(_) => Mode::Instruct,
            Prompt::Chat(_) => Mode::Chat,
        }
    }

    /// The exact string `model` reads for this prompt.
    pub fn text(&self, model: &LanguageModel) -> Result<String> {
        match self {
            Prompt::Raw(text) => Ok(text.clone()),
            Prompt::Instruct(question) => model.chat_prompt(&[Message::user(question)], true),
            Prompt::Chat(conversation) => conversation.prompt(model),
        }
    }
}

/// Chat mode: a growing list of messages, with an optional system prompt
/// (None: the template's own default, e.g. SmolLM2's "You are a helpful AI
/// assistant named SmolLM...").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Message>,
}

impl Conversation {
    pub fn new(system: Option<String>) -> Self {
        Self { system: system.filter(|s| !s.trim().is_empty()), turns: vec![] }
    }

    pub fn user(&mut self, text: &str) {
        self.turns.push(Message::user(text));
    }

    /// The assistant's reply as the history keeps it: decoded without special
    /// tokens, unmodified (as transformers' pipeline feeds it back).
    pub fn assistant(&mut self, reply: &str) {
        self.turns.push(Message::assistant(reply));
    }

    /// The messages the template receives.
    pub fn messages(&self) -> Vec<Message> {
        self.system.iter().map(|s| Message::system(s)).chain(self.turns.iter().cloned()).collect()
    }

    /// The prompt for the assistant's next reply.
    pub fn prompt(&self, model: &LanguageModel) -> Result<String> {
        model.chat_prompt(&self.messages(), true)
    }
}
