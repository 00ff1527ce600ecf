//! paved in Slack, the parts both the chat-ops function and the provision worker need: Block
//! Kit messages about requests, where a request from chat came from, and the notifications
//! delivered there (retried by the notifications queue, de-duplicated by the worker).

pub mod blocks;
pub mod messages;
pub mod notify;
pub mod origins;
