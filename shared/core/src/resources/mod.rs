//! The resources a READY request keeps alive, as the reconciliation loop sees them: what was
//! provisioned (the desired state is the request itself), how the loop manages it (the
//! management policy), and what the last observation found (conditions, drift, history).
//!
//! One state item per resource (`RESSTATE/<request id>`), its listing entries and its place in
//! its provider's schedule are written in one transaction, conditional on the state's version
//! ([`store`]). The loop itself is [`reconciler`].

pub mod leaks;
pub mod reconciler;
pub mod store;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ErrorCode;
use crate::error::Error;
use crate::observation::Drift;

pub use leaks::{
    Leak, LeakFilter, LeakReason, LeakRepository, LeakScanTask, RemoveLeakTask, ScanReport,
    is_leak_id,
};
pub use reconciler::{ObserveTask, Reconciler, ReconcilerSettings, TickReport};
pub use store::{ResourceFilter, ResourcePage, ResourceRepository};

/// How the loop treats what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagementPolicy {
    /// Report drift; never change the resource.
    #[default]
    Observe,
    /// Repair drift by re-applying the request's steps through the idempotent task path.
    Enforce,
}

/// The most paths one resource may ignore, and the longest path.
pub const MAX_IGNORED_FIELDS: usize = 50;
pub const MAX_FIELD_PATH: usize = 200;
/// Observation intervals a template may ask for.
pub const MIN_INTERVAL_SECONDS: u32 = 30;
pub const MAX_INTERVAL_SECONDS: u32 = 24 * 3600;
pub const DEFAULT_INTERVAL_SECONDS: u32 = 300;
/// How many drift and repair events a resource keeps.
pub const HISTORY_LIMIT: usize = 50;

/// How a template (`spec.reconcile`) asks its resources to be reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileSettings {
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    #[serde(default)]
    pub ignore_fields: Vec<String>,
}

fn default_interval() -> u32 {
    DEFAULT_INTERVAL_SECONDS
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            management_policy: ManagementPolicy::Observe,
            ignore_fields: Vec::new(),
        }
    }
}

impl ReconcileSettings {
    /// Reads a template's `spec.reconcile` (absent: the defaults), bounded.
    pub fn from_template(value: Option<&Value>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let settings: Self =
            serde_json::from_value(value.clone()).map_err(|e| format!("spec.reconcile: {e}"))?;
        if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&settings.interval_seconds) {
            return Err(format!(
                "spec.reconcile.intervalSeconds must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}"
            ));
        }
        check_ignore_fields(&settings.ignore_fields)?;
        Ok(settings)
    }
}

/// Ignored paths are dotted names (`queue.VisibilityTimeout`), bounded in number and length.
pub fn check_ignore_fields(fields: &[String]) -> Result<(), String> {
    if fields.len() > MAX_IGNORED_FIELDS {
        return Err(format!(
            "ignoreFields holds at most {MAX_IGNORED_FIELDS} paths"
        ));
    }
    for field in fields {
        let ok = !field.is_empty()
            && field.len() <= MAX_FIELD_PATH
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/:[]*".contains(&b));
        if !ok {
            return Err(format!(
                "ignoreFields: '{}' is not a field path (1-{MAX_FIELD_PATH} of letters, digits and . _ - / : [ ] *)",
                field.chars().take(MAX_FIELD_PATH).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// Whether `path` is one of `ignored`: equal, below it (`queue` ignores `queue.Policy`), or
/// matched by a trailing `*` (`tags.*`).
pub fn is_ignored(path: &str, ignored: &[String]) -> bool {
    ignored.iter().any(|i| {
        if let Some(prefix) = i.strip_suffix('*') {
            path.starts_with(prefix)
        } else {
            path == i
                || path
                    .strip_prefix(i.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        }
    })
}

/// `True`, `False` or `Unknown`, as Kubernetes conditions say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One condition: `Synced` (desired equals actual) or `Ready` (exists and is usable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
}

/// One entry of a resource's drift and repair history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceEvent {
    pub at: DateTime<Utc>,
    /// `drift_detected`, `drift_cleared`, `repaired`, `repair_failed`, `observe_failed`,
    /// `recreated`, `policy_changed`.
    pub event: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

/// Where a resource sits in the listing's `synced` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Synced,
    Drifted,
    Unknown,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Drifted => "drifted",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "true" | "synced" => Ok(Self::Synced),
            "false" | "drifted" => Ok(Self::Drifted),
            "unknown" => Ok(Self::Unknown),
            _ => Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                "synced must be true, false or unknown",
            )),
        }
    }
}

/// A resource as the loop keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceState {
    /// The request's id: the id `DELETE /v1/resources/{id}` takes.
    pub id: String,
    pub resource_type: String,
    pub name: String,
    pub owner: String,
    pub environment: String,
    pub template: String,
    pub management_policy: ManagementPolicy,
    pub ignore_fields: Vec<String>,
    pub interval_seconds: u32,
    pub conditions: Vec<ResourceCondition>,
    pub last_observed_at: Option<DateTime<Utc>>,
    pub drift: Vec<Drift>,
    /// Since when the resource has been drifted without a break (the scorecard's rule).
    pub drifted_since: Option<DateTime<Utc>>,
    pub history: Vec<ResourceEvent>,
    /// Repairs made so far: the next repair's task ids carry it, so two reconcilers that
    /// race to repair the same drift run one repair.
    pub repairs: u32,
    /// Bumped at every `Synced` transition; a notification is sent once per value.
    pub transitions: u32,
    /// When the loop next observes it (milliseconds since the epoch).
    pub due_at_ms: i64,
    pub version: u64,
}

pub const SYNCED: &str = "Synced";
pub const READY: &str = "Ready";

impl ResourceState {
    /// The state of a resource that just became READY: never observed yet.
    pub fn new(
        request: &crate::requests::ProvisioningRequest,
        now: DateTime<Utc>,
        due_at_ms: i64,
    ) -> Self {
        let condition = |kind: &str, reason: &str, message: &str, status| ResourceCondition {
            kind: kind.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
        };
        Self {
            id: request.id.clone(),
            resource_type: request.resource_type.clone(),
            name: request.name.clone(),
            owner: request.owner.clone(),
            environment: request.environment.clone(),
            template: request.template.clone(),
            management_policy: request.reconcile.management_policy,
            ignore_fields: request.reconcile.ignore_fields.clone(),
            interval_seconds: request.reconcile.interval_seconds,
            conditions: vec![
                condition(
                    SYNCED,
                    "NotObserved",
                    "not observed yet",
                    ConditionStatus::Unknown,
                ),
                condition(
                    READY,
                    "Provisioned",
                    "provisioned; not observed yet",
                    ConditionStatus::True,
                ),
            ],
            last_observed_at: None,
            drift: Vec::new(),
            drifted_since: None,
            history: Vec::new(),
            repairs: 0,
            transitions: 0,
            due_at_ms,
            version: 0,
        }
    }

    pub fn condition(&self, kind: &str) -> Option<&ResourceCondition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Sets a condition; its `lastTransitionTime` moves only when its status changes.
    /// Returns whether the status changed.
    pub fn set_condition(
        &mut self,
        kind: &str,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> bool {
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                let changed = c.status != status;
                if changed {
                    c.last_transition_time = now;
                }
                c.status = status;
                reason.clone_into(&mut c.reason);
                message.clone_into(&mut c.message);
                changed
            }
            None => {
                self.conditions.push(ResourceCondition {
                    kind: kind.into(),
                    status,
                    reason: reason.into(),
                    message: message.into(),
                    last_transition_time: now,
                });
                true
            }
        }
    }

    /// The listing bucket the stored conditions put it in.
    pub fn sync_state(&self) -> SyncState {
        match self.condition(SYNCED).map(|c| c.status) {
            Some(ConditionStatus::True) => SyncState::Synced,
            Some(ConditionStatus::False) => SyncState::Drifted,
            _ => SyncState::Unknown,
        }
    }

    /// Records a history event, keeping the last [`HISTORY_LIMIT`].
    pub fn record(&mut self, at: DateTime<Utc>, event: &str, message: String, drift: Vec<Drift>) {
        self.history.push(ResourceEvent {
            at,
            event: event.into(),
            message,
            drift,
        });
        if self.history.len() > HISTORY_LIMIT {
            let extra = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..extra);
        }
    }

    /// Whether its last observation is older than three intervals (or it was never observed
    /// within three intervals of becoming live): then its `Synced` says `Unknown`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let three = ChronoDuration::seconds(3 * i64::from(self.interval_seconds));
        let since = self
            .last_observed_at
            .or_else(|| self.condition(READY).map(|c| c.last_transition_time));
        since.is_some_and(|t| now - t > three)
    }

    /// The conditions as a reader should see them now: a stale resource's `Synced` is
    /// `Unknown`, whatever the last observation said.
    pub fn conditions_at(&self, now: DateTime<Utc>) -> Vec<ResourceCondition> {
        let mut conditions = self.conditions.clone();
        if self.is_stale(now)
            && let Some(c) = conditions.iter_mut().find(|c| c.kind == SYNCED)
            && c.status != ConditionStatus::Unknown
        {
            let since = self.last_observed_at.unwrap_or(c.last_transition_time);
            c.status = ConditionStatus::Unknown;
            c.reason = "ObservationOverdue".into();
            c.message = format!(
                "not observed for more than three intervals ({} s each); last observed {}",
                self.interval_seconds,
                since.to_rfc3339()
            );
            c.last_transition_time =
                since + ChronoDuration::seconds(3 * i64::from(self.interval_seconds));
        }
        conditions
    }

    /// The resource as the API shows it.
    pub fn view(&self, now: DateTime<Utc>) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.resource_type,
            "name": self.name,
            "owner": self.owner,
            "environment": self.environment,
            "template": self.template,
            "managementPolicy": self.management_policy,
            "ignoreFields": self.ignore_fields,
            "intervalSeconds": self.interval_seconds,
            "conditions": self.conditions_at(now),
            "lastObservedAt": self.last_observed_at,
            "drift": self.drift,
            "driftedSince": self.drifted_since,
            "history": self.history,
            "nextObservationAt": DateTime::<Utc>::from_timestamp_millis(self.due_at_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_fields_cover_their_children_and_wildcards() {
        let ignored = vec!["queue.VisibilityTimeout".to_owned(), "tags.*".to_owned()];
        assert!(is_ignored("queue.VisibilityTimeout", &ignored));
        assert!(is_ignored("tags.team", &ignored));
        assert!(!is_ignored("queue.VisibilityTimeoutX", &ignored));
        assert!(!is_ignored("queue.MessageRetentionPeriod", &ignored));
        assert!(is_ignored("grants[0]", &["grants".to_owned()]));
    }

    #[test]
    fn template_settings_are_bounded() {
        let ok = ReconcileSettings::from_template(Some(&serde_json::json!(
            {"intervalSeconds": 60, "managementPolicy": "enforce", "ignoreFields": ["tags.*"]}
        )))
        .expect("valid");
        assert_eq!(ok.management_policy, ManagementPolicy::Enforce);
        for bad in [
            serde_json::json!({"intervalSeconds": 1}),
            serde_json::json!({"managementPolicy": "destroy"}),
            serde_json::json!({"ignoreFields": ["a b"]}),
            serde_json::json!({"surprise": true}),
        ] {
            assert!(
                ReconcileSettings::from_template(Some(&bad)).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            ReconcileSettings::from_template(None),
            Ok(ReconcileSettings::default())
        );
    }
}
