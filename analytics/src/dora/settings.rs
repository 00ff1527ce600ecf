//! The report's options: the window and the spec's tunables, with the spec's defaults.

use chrono::Duration;

use crate::window::ReportWindow;

#[derive(Debug, Clone)]
pub struct DoraSettings {
    pub window: ReportWindow,
    /// R1: environments that count as production, compared case-insensitively.
    pub production_envs: Vec<String>,
    /// R5 step 3: how far back from an incident its service's latest deployment may lie.
    pub attribution_window: Duration,
    /// R6: how soon a rollback or hotfix must follow for the deployment before it to fail.
    pub rollback_window: Duration,
}

impl DoraSettings {
    pub fn new(window: ReportWindow) -> Self {
        Self {
            window,
            production_envs: paved_core::environment::PRODUCTION_ENVIRONMENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            attribution_window: Duration::days(7),
            rollback_window: Duration::hours(24),
        }
    }

    pub(crate) fn start_micros(&self) -> i64 {
        self.window.from.timestamp_micros()
    }

    pub(crate) fn end_micros(&self) -> i64 {
        self.window.to.timestamp_micros()
    }
}

pub(crate) fn micros(duration: Duration) -> i64 {
    duration.num_microseconds().unwrap_or(i64::MAX)
}
