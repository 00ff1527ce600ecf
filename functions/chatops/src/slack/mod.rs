//! Slack's side: request signing, the payloads it sends, and Block Kit replies.

pub use paved_chat::blocks;
pub mod payloads;
pub mod signature;
