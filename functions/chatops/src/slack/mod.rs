//! Slack's side: request signing, the payloads it sends, and Block Kit replies.

pub mod blocks;
pub mod payloads;
pub mod signature;
