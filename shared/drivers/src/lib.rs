//! Provisioning drivers: each makes a real thing behind the [`Driver`](paved_core::provisioning::Driver)
//! port, under a deterministic external name.

pub mod config;
pub mod dynamodb;
pub mod names;
pub mod ownership;
pub mod postgres;
mod sdk;
pub mod service;
pub mod sqs;
