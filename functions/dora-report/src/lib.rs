//! The scheduled DORA report function: the job is [`paved_analytics::job::DoraJob`], shared
//! with `paved up`; this crate only reads its Lambda event.

use chrono::{DateTime, Utc};
use paved_analytics::job::{DoraJob, RunSummary};

/// The Lambda handler: an EventBridge schedule event, or a direct invoke with an optional
/// `{"now": RFC 3339}` to compute as of another day.
pub async fn handle(job: &DoraJob, payload: serde_json::Value) -> anyhow::Result<RunSummary> {
    let now = match payload.get("now").and_then(|v| v.as_str()) {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| anyhow::anyhow!("\"now\" must be an RFC 3339 instant: {e}"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    job.run(now).await
}
