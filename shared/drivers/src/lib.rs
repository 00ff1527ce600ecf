//! Provisioning drivers: each makes a real thing behind the [`Driver`](paved_core::provisioning::Driver)
//! port, under a deterministic external name.

pub mod aws;
pub mod config;
pub mod names;
pub mod ownership;
pub mod postgres;
pub mod service;
