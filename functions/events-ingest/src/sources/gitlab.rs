//! GitLab webhooks: push (default branch), merge request (merged), deployment (finished) and
//! issues that are incidents (the `incident` type or label). The project maps to a service
//! through the catalog annotation `gitlab.com/project-slug`.

use chrono::{DateTime, NaiveDateTime, Utc};
use paved_core::delivery::{DeploymentRecord, IncidentRecord};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::normalized::{Normalized, Parsed, RepoEvent, kind_hint, on_default_branch, pushed};
use crate::sources::github::INCIDENT_LABEL;

/// GitLab writes time stamps as RFC 3339, `2021-04-14 14:51:18 UTC` or
/// `2021-04-28 21:50:00 +0200`, depending on the hook.
fn gitlab_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| D::Error::custom(format!("unreadable time {text:?}")))
}

fn gitlab_time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("unreadable time {text:?}"))),
    }
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Some(naive) = text.strip_suffix(" UTC") {
        return NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|n| n.and_utc());
    }
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[derive(Debug, Deserialize)]
struct Project {
    path_with_namespace: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    project: Project,
    #[serde(default)]
    commits: Vec<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    id: String,
    #[serde(deserialize_with = "gitlab_time")]
    timestamp: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    project: Project,
    object_attributes: MergeAttributes,
}

#[derive(Debug, Deserialize)]
struct MergeAttributes {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(deserialize_with = "gitlab_time")]
    created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Deployment {
    status: String,
    #[serde(deserialize_with = "gitlab_time")]
    status_changed_at: DateTime<Utc>,
    deployment_id: u64,
    environment: String,
    sha: String,
    project: Project,
    #[serde(default)]
    ref_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssueEvent {
    project: Project,
    object_attributes: IssueAttributes,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Debug, Deserialize)]
struct IssueAttributes {
    iid: u64,
    #[serde(deserialize_with = "gitlab_time")]
    created_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "gitlab_time_opt")]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    issue_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Label {
    title: String,
}

/// Reads one delivery by its `object_kind`. `Err` is a malformed payload; `Ok(Err(reason))` an
/// event paved does not use.
pub fn parse(body: &Value) -> Result<Result<RepoEvent, String>, String> {
    let kind = body
        .get("object_kind")
        .and_then(Value::as_str)
        .ok_or("not a GitLab webhook: no object_kind")?;
    let read = |e: serde_json::Error| format!("not a GitLab {kind} event: {e}");
    match kind {
        "push" => {
            let push: Push = serde_json::from_value(body.clone()).map_err(read)?;
            if let Err(reason) =
                on_default_branch(&push.git_ref, push.project.default_branch.as_deref())
            {
                return Ok(Err(reason));
            }
            let commits = push
                .commits
                .into_iter()
                .map(|c| (c.id, c.timestamp))
                .collect();
            Ok(Ok(pushed(push.project.path_with_namespace, commits)))
        }
        "merge_request" => {
            let mr: MergeRequest = serde_json::from_value(body.clone()).map_err(read)?;
            let merged = mr.object_attributes.action.as_deref() == Some("merge");
            let Some(sha) = mr.object_attributes.merge_commit_sha.filter(|_| merged) else {
                return Ok(Err(
                    "merge_request: only merged merge requests are changes".into()
                ));
            };
            let opened = mr.object_attributes.created_at;
            Ok(Ok(pushed(
                mr.project.path_with_namespace,
                vec![(sha, opened)],
            )))
        }
        "deployment" => {
            let d: Deployment = serde_json::from_value(body.clone()).map_err(read)?;
            let status = match d.status.as_str() {
                "success" => "success",
                "failed" => "failure",
                other => {
                    return Ok(Err(format!(
                        "deployment {other}: the deployment has not finished"
                    )));
                }
            };
            Ok(Ok(RepoEvent {
                repository: d.project.path_with_namespace,
                build: Box::new(move |service| {
                    Parsed::Use(Normalized {
                        deployments: vec![DeploymentRecord {
                            deploy_id: format!("gitlab-{}", d.deployment_id),
                            service: service.to_owned(),
                            environment: d.environment,
                            status: status.to_owned(),
                            kind: kind_hint(d.ref_name.as_deref()),
                            commit_sha: Some(d.sha),
                            finished_at: d.status_changed_at,
                            changes: Vec::new(),
                        }],
                        ..Normalized::default()
                    })
                }),
            }))
        }
        "issue" | "work_item" => {
            let ev: IssueEvent = serde_json::from_value(body.clone()).map_err(read)?;
            let incident = ev.object_attributes.issue_type.as_deref() == Some("incident")
                || ev
                    .labels
                    .iter()
                    .any(|l| l.title.eq_ignore_ascii_case(INCIDENT_LABEL));
            if !incident {
                return Ok(Err("the issue is not an incident (type or label)".into()));
            }
            let project = ev.project.path_with_namespace.clone();
            let attrs = ev.object_attributes;
            Ok(Ok(RepoEvent {
                repository: ev.project.path_with_namespace,
                build: Box::new(move |service| {
                    Parsed::Use(Normalized {
                        incidents: vec![IncidentRecord {
                            incident_id: format!("gitlab:{project}#{}", attrs.iid),
                            service: Some(service.to_owned()),
                            created_at: attrs.created_at,
                            resolved_at: attrs
                                .closed_at
                                .filter(|_| attrs.state.as_deref() == Some("closed")),
                            deploy_id: None,
                            commit_sha: None,
                        }],
                        ..Normalized::default()
                    })
                }),
            }))
        }
        other => Ok(Err(format!("GitLab event {other} is not one paved uses"))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn gitlab_time_formats() {
        let expected = "2021-04-28T19:50:00+00:00";
        assert_eq!(
            parse_time("2021-04-28 21:50:00 +0200")
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some(expected)
        );
        assert_eq!(
            parse_time("2021-04-28 19:50:00 UTC")
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some(expected)
        );
        assert_eq!(
            parse_time("2021-04-28T19:50:00Z")
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some(expected)
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
