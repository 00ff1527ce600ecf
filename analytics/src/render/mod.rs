//! The report's renderings: the spec's JSON, a self-contained HTML page for leaders, Markdown
//! for a chat post or a PR, and CSV for spreadsheets.

mod charts;
mod csv;
mod format;
mod html;
mod markdown;

use crate::dora::Analysis;
use crate::error::{AnalyticsError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
    Markdown,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = AnalyticsError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            "md" | "markdown" => Ok(Self::Markdown),
            "csv" => Ok(Self::Csv),
            other => Err(AnalyticsError::InvalidOption(format!(
                "--format {other:?}: use json, html, md or csv"
            ))),
        }
    }
}

pub fn render(analysis: &Analysis, format: Format) -> Result<String> {
    match format {
        Format::Json => serde_json::to_string_pretty(&analysis.report)
            .map(|mut json| {
                json.push('\n');
                json
            })
            .map_err(|e| AnalyticsError::InvalidOption(e.to_string())),
        Format::Html => html::render(analysis),
        Format::Markdown => Ok(markdown::render(analysis)),
        Format::Csv => csv::render(&analysis.report),
    }
}
