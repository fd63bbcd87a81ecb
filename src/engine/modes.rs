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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Foundation,
    Instruct,
    Chat,
}

/// The follow-up the tutorial asks in its chat section.
pub const DEFAULT_FOLLOW_UP: &str = "And what is a famous landmark there?";
/// The tutorial's question.
pub const DEFAULT_QUESTION: &str = "What is the capital of France?";

/// Foundation mode: the model sees exactly the question's text.
pub fn foundation_prompt(question: &str) -> String {
    question.to_string()
}

/// Instruct mode: one user message, templated, ending with the assistant cue.
pub fn instruct_prompt(model: &LanguageModel, question: &str) -> Result<String> {
    model.chat_prompt(&[Message::user(question)], true)
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

    /// The messages the template receives.
    pub fn messages(&self) -> Vec<Message> {
        self.system.iter().map(|s| Message::system(s)).chain(self.turns.iter().cloned()).collect()
    }

    /// The prompt for the assistant's next reply.
    pub fn prompt(&self, model: &LanguageModel) -> Result<String> {
        model.chat_prompt(&self.messages(), true)
    }
}
