//! What the question box and the chat ask of the worker: Ask (the question
//! to Foundation, Instruct and the chat's first turn), a follow-up, Stop,
//! and a link's follow-ups asked in turn after each chat answer.

use std::cell::RefCell;

use leptos::prelude::*;

use super::bridge::{send, worker_gone};
use super::signals::AppState;
use super::state::{Answer, ChatTurn};
use crate::protocol::{Ask, Prompt, ToWorker};

thread_local! {
    /// Follow-ups still to ask, one after each chat answer that ends well.
    static PENDING_FOLLOW_UPS: RefCell<std::collections::VecDeque<String>> = const { RefCell::new(std::collections::VecDeque::new()) };
}

/// Ask: the question to all three (Foundation, Instruct, then Chat's first turn).
pub fn ask(state: AppState) {
    let question = state.question.get_untracked();
    if question.trim().is_empty() {
        state.notice.set(Some("Type a question first.".into()));
        return;
    }
    if worker_gone(state) {
        return;
    }
    send(&ToWorker::Stop);
    let settings = state.settings.get_untracked();
    let max = settings.sampling.max_new_tokens;
    let (f, i, c) = (state.job_id(), state.job_id(), state.job_id());
    // Both with candidates: the candidates view branches from them.
    let (sf, si) = (settings.sampling(max, 5), settings.sampling(max, 5));
    state.foundation.set(Answer { sampling: Some(sf.clone()), ..Answer::waiting(f, max) });
    state.instruct.set(Answer { sampling: Some(si.clone()), ..Answer::waiting(i, max) });
    state.grid.set(Default::default());
    state.chat.set(vec![]);
    let conversation = state.conversation(&question);
    state.chat.set(vec![ChatTurn { user: question.clone(), answer: Answer::waiting(c, max) }]);
    // A link's follow-ups are asked once, after its first Ask.
    let replay = state.replay.try_update_value(std::mem::take).unwrap_or_default();
    PENDING_FOLLOW_UPS.with(|p| *p.borrow_mut() = replay.into());
    send(&ToWorker::Ask(Ask::new(f, Prompt::Raw(question.clone()), sf)));
    send(&ToWorker::Ask(Ask::new(i, Prompt::Instruct(question), si)));
    send(&ToWorker::Ask(Ask::new(c, Prompt::Chat(conversation), settings.sampling(max, 0))));
}

/// The chat's follow-up box: one more turn with the whole history.
pub fn follow_up(state: AppState) {
    let text = state.follow_up.get_untracked();
    if text.trim().is_empty() || worker_gone(state) {
        return;
    }
    let settings = state.settings.get_untracked();
    let max = settings.follow_up_max_new_tokens;
    let job = state.job_id();
    let conversation = state.conversation(&text);
    state.chat.update(|c| c.push(ChatTurn { user: text, answer: Answer::waiting(job, max) }));
    state.follow_up.set(String::new());
    send(&ToWorker::Ask(Ask::new(job, Prompt::Chat(conversation), settings.sampling(max, 0))));
}

pub fn stop() {
    PENDING_FOLLOW_UPS.with(|p| p.borrow_mut().clear());
    send(&ToWorker::Stop);
}

/// After a chat answer ended well: the next of a link's follow-ups, if any.
pub(super) fn next_follow_up(state: AppState, job: u64) {
    let latest = state.chat.with_untracked(|c| c.last().and_then(|t| t.answer.job)) == Some(job);
    if let Some(text) = latest.then(|| PENDING_FOLLOW_UPS.with(|p| p.borrow_mut().pop_front())).flatten() {
        state.follow_up.set(text);
        follow_up(state);
    }
}


pub fn reset_chat(state: AppState) {
    if state.chat.with_untracked(|c| c.iter().any(|t| t.answer.phase.busy())) {
        send(&ToWorker::Stop);
    }
    state.chat.set(vec![]);
}
