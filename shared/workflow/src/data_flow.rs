//! The data flow of Amazon States Language that needs no state: paths, result paths, error
//! matching with Step Functions' wildcards, and time conversions.

use serde_json::{Value, json};

use super::interpreter::RUNTIME;
use super::paths::RefPath;

pub(super) fn secs_ms(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 4_000) * 1000
}

pub(super) fn timestamp_ms(t: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("timestamp {t:?}: {e}"))
}

/// Not MD5 (the engine has no use for it); a stable digest in the same field for shape.
pub(super) fn md5ish(body: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("{:032x}", h.finish())
}

/// Error-name matching with Step Functions' wildcards.
pub(super) fn matches_error(names: &[String], error: &str) -> bool {
    names.iter().any(|n| match n.as_str() {
        "States.ALL" => error != RUNTIME,
        "States.TaskFailed" => {
            error != "States.Timeout" && error != "States.HeartbeatTimeout" && error != RUNTIME
        }
        // TimeoutSeconds and HeartbeatSeconds both surface as States.Timeout to a retrier that
        // names only that (AWS's documented behaviour).
        "States.Timeout" => error == "States.Timeout" || error == "States.HeartbeatTimeout",
        other => other == error,
    })
}

pub(super) fn apply_path(
    path: Option<&Option<RefPath>>,
    value: &Value,
    ctx: &Value,
) -> Result<Value, String> {
    match path {
        None => Ok(value.clone()),
        Some(None) => Ok(json!({})),
        Some(Some(p)) => p
            .get(value, ctx)
            .cloned()
            .ok_or_else(|| "a path (InputPath/OutputPath) matched nothing".to_owned()),
    }
}

pub(super) fn apply_result_path(
    path: Option<&Option<RefPath>>,
    mut raw: Value,
    result: Value,
) -> Result<Value, String> {
    match path {
        None => Ok(result),
        Some(None) => Ok(raw),
        Some(Some(p)) => {
            p.set(&mut raw, result)?;
            Ok(raw)
        }
    }
}
