//! The `paved` binary's library: the local host that runs every HTTP function of the platform
//! in one process on the embedded backend (`paved up`), and the CLI around it.

#[cfg(feature = "analytics")]
pub mod analytics;
pub mod cli;
pub mod client;
pub mod host;
pub mod secret;
