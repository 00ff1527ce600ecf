//! What every source is normalised into: the metrics spec's rows, plus pushed commits that wait
//! for the production deployment that ships them.

use chrono::{DateTime, Utc};
use paved_core::delivery::{ChangeRecord, DeploymentRecord, IncidentRecord};
use serde::Serialize;

/// The rows one delivery contributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Normalized {
    /// Commits pushed to a service's default branch: changes, and pending until deployed.
    pub pushes: Vec<(String, Vec<ChangeRecord>)>,
    /// Changes whose deployment is already known (batch input).
    pub changes: Vec<ChangeRecord>,
    /// A successful production deployment without a change set takes the pending commits.
    pub deployments: Vec<DeploymentRecord>,
    pub incidents: Vec<IncidentRecord>,
}

/// A delivery is used, or ignored with a reason the sender sees (202).
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Use(Normalized),
    Ignore(String),
}

/// A repository's delivery, parsed, before the repository is resolved to a service.
pub struct RepoEvent {
    pub repository: String,
    pub build: Box<dyn FnOnce(&str) -> Parsed + Send>,
}

impl std::fmt::Debug for RepoEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoEvent").finish_non_exhaustive()
    }
}

impl RepoEvent {
    /// The rows, for the service the repository belongs to.
    pub fn for_service(self, service: &str) -> Parsed {
        (self.build)(service)
    }
}

/// Commits pushed to, or merged into, a repository's default branch, as `(sha, authored_at)`:
/// changes of the repository's service that wait for the deployment that ships them.
pub fn pushed(repository: String, commits: Vec<(String, DateTime<Utc>)>) -> RepoEvent {
    RepoEvent {
        repository,
        build: Box::new(move |service| {
            let commits = commits
                .into_iter()
                .map(|(sha, authored_at)| ChangeRecord {
                    sha,
                    service: service.to_owned(),
                    authored_at,
                })
                .collect();
            Parsed::Use(Normalized {
                pushes: vec![(service.to_owned(), commits)],
                ..Normalized::default()
            })
        }),
    }
}

/// Only pushes to the default branch (`main` when the sender does not say) are changes.
pub fn on_default_branch(git_ref: &str, default_branch: Option<&str>) -> Result<(), String> {
    let default = default_branch.unwrap_or("main");
    if git_ref == format!("refs/heads/{default}") {
        Ok(())
    } else {
        Err(format!(
            "a push to {git_ref}, not to the default branch {default}"
        ))
    }
}

/// The spec's default production environments (R1), the rule every part of paved uses.
pub use paved_core::environment::is_production;

/// `normal`, `rollback` or `hotfix` from a free-form hint; anything else is normal.
pub fn kind_hint(hint: Option<&str>) -> Option<String> {
    let hint = hint?.to_ascii_lowercase();
    ["rollback", "hotfix"]
        .into_iter()
        .find(|k| hint.contains(k))
        .map(str::to_owned)
}
