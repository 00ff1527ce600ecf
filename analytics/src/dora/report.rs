//! The spec's output shape (`paved report dora --format json`).

use serde::{Deserialize, Serialize};

pub const SPEC_VERSION: &str = "1";
pub const EDITION: &str = "2023";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoraReport {
    pub spec_version: String,
    pub edition: String,
    pub window: WindowOut,
    pub org: Metrics,
    pub teams: Vec<TeamMetrics>,
    pub services: Vec<ServiceMetrics>,
    pub diagnostics: Diagnostics,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOut {
    /// RFC 3339, UTC.
    pub from: String,
    pub to: String,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMetrics {
    pub team: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMetrics {
    pub service: String,
    pub team: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `M` in the spec. Rates are fractions; durations are minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub deployments: u64,
    pub deploys_per_day: f64,
    pub deployment_days: u64,
    pub median_deploy_days_per_week: Option<f64>,
    pub median_deploy_days_per_month: Option<f64>,
    pub lead_time_median_minutes: Option<f64>,
    pub lead_time_samples: u64,
    pub failed_deployments: u64,
    pub change_failure_rate: Option<f64>,
    pub fdrt_median_minutes: Option<f64>,
    pub fdrt_samples: u64,
    pub unrecovered_failures: u64,
    pub ttr_median_minutes: Option<f64>,
    pub ttr_samples: u64,
    pub rework_rate: Option<f64>,
    pub bands: Bands,
    pub scores: Scores,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Elite => "elite",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// High or elite: what the Gold scorecard level asks for.
    pub fn is_high_or_better(self) -> bool {
        matches!(self, Self::Elite | Self::High)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bands {
    pub deployment_frequency: Option<Band>,
    pub lead_time: Option<Band>,
    pub change_failure_rate: Option<Band>,
    pub recovery_time: Option<Band>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub lead_time: Option<f64>,
    pub deployment_frequency: Option<f64>,
    pub recovery_time: Option<f64>,
    pub change_failure_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub throughput: Option<f64>,
    pub stability: Option<f64>,
    pub overall: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub lead_time_dropped: u64,
    pub changes_unknown: u64,
    pub unattributed_incidents: u64,
}
