//! One error type for the analytics crate; the CLI and the report function map it to their own
//! surfaces (exit status, problem+json).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// An input table is missing, unreadable or has the wrong shape.
    #[error("{table}: {message}")]
    Input { table: String, message: String },
    /// A window bound, time zone or option that cannot be used.
    #[error("{0}")]
    InvalidOption(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

impl AnalyticsError {
    pub(crate) fn input(table: &str, message: impl Into<String>) -> Self {
        Self::Input {
            table: table.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;
