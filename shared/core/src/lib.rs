//! paved's domain: the catalog model and its rules, authorization, the small ports every
//! backend implements, and the repositories written once over those ports. No I/O lives here.

pub mod adoption;
pub mod auth;
pub mod catalog;
pub mod circuit;
pub mod delivery;
pub mod environment;
pub mod error;
pub mod idempotency;
pub mod messages;
pub mod observation;
pub mod policy;
pub mod ports;
pub mod provisioning;
pub mod requests;
pub mod resources;
pub mod scorecards;
pub mod services;
pub mod tasks;

pub use error::{Error, ErrorCode, Violation};
