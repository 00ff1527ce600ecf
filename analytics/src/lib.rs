//! paved's analytics: the DORA metrics of `metrics-spec.md` (version 1) over the deployment,
//! change and incident tables, computed with polars, and the reports rendered from them.

pub mod dora;
pub mod error;
pub mod generate;
pub mod input;
pub mod job;
pub mod platform;
pub mod render;
pub mod window;

pub use error::{AnalyticsError, Result};
