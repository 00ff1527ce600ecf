//! One module per sender: each reads its payloads into [`crate::normalized::Normalized`] rows.

pub mod batch;
pub mod cdevents;
pub mod github;
pub mod gitlab;
pub mod pagerduty;
