//! GitHub webhooks: `push` (default branch), `pull_request` (merged), `deployment_status`
//! (the finished deployment), and `issues` labelled `incident`. The repository maps to a
//! service through the catalog annotation `github.com/project-slug`.

use chrono::{DateTime, Utc};
use paved_core::delivery::{DeploymentRecord, IncidentRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::normalized::{Normalized, Parsed, RepoEvent, kind_hint, on_default_branch, pushed};

/// The label that makes an issue an incident.
pub const INCIDENT_LABEL: &str = "incident";

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: Repository,
    #[serde(default)]
    commits: Vec<PushCommit>,
}

#[derive(Debug, Deserialize)]
struct PushCommit {
    id: String,
    timestamp: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    repository: Repository,
    pull_request: PullRequest,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct DeploymentStatusEvent {
    deployment_status: DeploymentStatus,
    deployment: Deployment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct DeploymentStatus {
    state: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    environment: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Deployment {
    id: u64,
    sha: String,
    environment: String,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Deserialize)]
struct IssuesEvent {
    action: String,
    issue: Issue,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    created_at: DateTime<Utc>,
    #[serde(default)]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

/// Reads one delivery of event type `event` (the `X-GitHub-Event` header). `Err` is a
/// malformed payload; `Ok(Err(reason))` an event paved does not use.
pub fn parse(event: &str, body: &Value) -> Result<Result<RepoEvent, String>, String> {
    let read = |what: &str| format!("not a GitHub {what} event");
    match event {
        "push" => {
            let push: Push = serde_json::from_value(body.clone())
                .map_err(|e| format!("{}: {e}", read("push")))?;
            if let Err(reason) =
                on_default_branch(&push.git_ref, push.repository.default_branch.as_deref())
            {
                return Ok(Err(reason));
            }
            let commits = push
                .commits
                .into_iter()
                .map(|c| (c.id, c.timestamp))
                .collect();
            Ok(Ok(pushed(push.repository.full_name, commits)))
        }
        "pull_request" => {
            let pr: PullRequestEvent = serde_json::from_value(body.clone())
                .map_err(|e| format!("{}: {e}", read("pull_request")))?;
            let merged = pr.action == "closed" && pr.pull_request.merged == Some(true);
            let Some(sha) = pr.pull_request.merge_commit_sha.filter(|_| merged) else {
                return Ok(Err(format!(
                    "pull_request {}: only merged pull requests are changes",
                    pr.action
                )));
            };
            // The merge commit waits for its deployment; its change starts when the pull
            // request was opened (the push of the merge keeps the earlier time).
            let opened = pr.pull_request.created_at;
            Ok(Ok(pushed(pr.repository.full_name, vec![(sha, opened)])))
        }
        "deployment" => Ok(Err(
            "a deployment is recorded when its deployment_status says it finished".into(),
        )),
        "deployment_status" => {
            let ds: DeploymentStatusEvent = serde_json::from_value(body.clone())
                .map_err(|e| format!("{}: {e}", read("deployment_status")))?;
            let status = match ds.deployment_status.state.as_str() {
                "success" => "success",
                "failure" | "error" => "failure",
                other => {
                    return Ok(Err(format!(
                        "deployment_status {other}: the deployment has not finished"
                    )));
                }
            };
            let hint = ds
                .deployment
                .payload
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(ds.deployment.task.clone())
                .or(ds.deployment.description.clone());
            let environment = ds
                .deployment_status
                .environment
                .clone()
                .unwrap_or(ds.deployment.environment.clone());
            Ok(Ok(RepoEvent {
                repository: ds.repository.full_name,
                build: Box::new(move |service| {
                    Parsed::Use(Normalized {
                        deployments: vec![DeploymentRecord {
                            deploy_id: format!("github-{}", ds.deployment.id),
                            service: service.to_owned(),
                            environment,
                            status: status.to_owned(),
                            kind: kind_hint(hint.as_deref()),
                            commit_sha: Some(ds.deployment.sha),
                            finished_at: ds.deployment_status.created_at,
                            changes: Vec::new(),
                        }],
                        ..Normalized::default()
                    })
                }),
            }))
        }
        "issues" => {
            let ev: IssuesEvent = serde_json::from_value(body.clone())
                .map_err(|e| format!("{}: {e}", read("issues")))?;
            let labelled = ev
                .issue
                .labels
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(INCIDENT_LABEL));
            if !labelled {
                return Ok(Err(format!(
                    "issues {}: the issue is not labelled {INCIDENT_LABEL}",
                    ev.action
                )));
            }
            let repository = ev.repository.full_name.clone();
            Ok(Ok(RepoEvent {
                repository: ev.repository.full_name,
                build: Box::new(move |service| {
                    Parsed::Use(Normalized {
                        incidents: vec![IncidentRecord {
                            incident_id: format!("github:{repository}#{}", ev.issue.number),
                            service: Some(service.to_owned()),
                            created_at: ev.issue.created_at,
                            resolved_at: ev
                                .issue
                                .closed_at
                                .filter(|_| ev.issue.state.as_deref() != Some("open")),
                            deploy_id: None,
                            commit_sha: None,
                        }],
                        ..Normalized::default()
                    })
                }),
            }))
        }
        "ping" => Ok(Err("ping: the webhook is set up".into())),
        other => Ok(Err(format!("GitHub event {other} is not one paved uses"))),
    }
}
