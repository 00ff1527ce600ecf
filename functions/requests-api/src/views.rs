//! Reading requests: one, or a filtered list. Callers see the requests of their teams and
//! their own; admins and approvers see all.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use paved_core::Error;
use paved_core::auth::Identity;
use paved_core::catalog::{EntityRef, OwnerRef, RefDefaults};
use paved_core::requests::{ProvisioningRequest, RequestId, RequestStatus};
use paved_http::{ApiError, Caller};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{RequestsState, cursor};

/// The request as the API shows it: the record plus Kubernetes-style conditions.
pub fn request_view(r: &ProvisioningRequest) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("version");
        map.insert("conditions".into(), conditions(r));
    }
    v
}

fn conditions(r: &ProvisioningRequest) -> Value {
    use RequestStatus::*;
    let approved = match (&r.decision, r.needs_approval) {
        (_, false) => json!({"type": "Approved", "status": "True", "reason": "NotRequired"}),
        (Some(d), true) if d.approved => {
            json!({"type": "Approved", "status": "True", "reason": "Approved", "message": format!("approved by {}", d.by), "lastTransitionTime": d.at})
        }
        (Some(d), true) => {
            json!({"type": "Approved", "status": "False", "reason": "Rejected", "message": format!("rejected by {}", d.by), "lastTransitionTime": d.at})
        }
        (None, true) => {
            json!({"type": "Approved", "status": "Unknown", "reason": "WaitingForApproval"})
        }
    };
    let ready = match r.status {
        Ready => json!({"type": "Ready", "status": "True", "reason": "Provisioned"}),
        Failed | DeleteFailed => json!({"type": "Ready", "status": "False", "reason": "Failed",
            "message": r.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default()}),
        other => {
            json!({"type": "Ready", "status": if matches!(other, Rejected | Cancelled | Deleted) { "False" } else { "Unknown" },
            "reason": serde_json::to_value(other).unwrap_or(Value::Null)})
        }
    };
    json!([{"type": "PolicyPassed", "status": "True", "reason": "NoViolations"}, approved, ready])
}

/// Whether `who` may see (and, for the requester's team, act on) `r`.
pub(crate) fn may_see(s: &RequestsState, who: &Identity, r: &ProvisioningRequest) -> bool {
    let is = |reference: &str, kind: &'static str| {
        EntityRef::parse(
            reference,
            RefDefaults {
                kind: Some(kind),
                namespace: "default",
            },
        )
        .is_ok_and(|e| who.is(&e))
    };
    s.access.is_admin(who)
        || is(&s.approver_group, "group")
        || is(&r.owner, "group")
        || is(&r.requester, "user")
}

pub(crate) async fn visible(
    s: &RequestsState,
    who: &Identity,
    id: &str,
) -> Result<ProvisioningRequest, Error> {
    let Some(id) = RequestId::parse(id) else {
        return Err(Error::NotFound(format!("request {id}")));
    };
    let r = s.requests.get(id.as_str()).await?;
    if may_see(s, who, &r) {
        Ok(r)
    } else {
        // Not 403: whether a request exists is not the caller's business.
        Err(Error::NotFound(format!("request {id}")))
    }
}

/// One request, if the caller may see it.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn one(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = visible(&s, &who, &id).await?;
    Ok(axum::Json(request_view(&r)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    owner: Option<String>,
    template: Option<String>,
    environment: Option<String>,
    requester: Option<String>,
    #[serde(default = "hundred")]
    limit: usize,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

fn hundred() -> usize {
    100
}

/// The requests the caller may see, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/requests", tag = "requests",
    params(
        ("status" = Option<String>, Query, description = "SUBMITTED, WAITING_FOR_APPROVAL, QUEUED, PROVISIONING, READY, FAILED, REJECTED, CANCELLED, DEPROVISIONING, DELETED or DELETE_FAILED"),
        ("owner" = Option<String>, Query, description = "An owner ref (team-a or group:default/team-a)"),
        ("template" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("requester" = Option<String>, Query, description = "A user ref"),
        ("limit" = Option<usize>, Query, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page, with the same filters"),
    ),
    responses(
        (status = 200, description = "{items: [...], total, nextCursor?}"),
        (status = 400, description = "A filter or cursor cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| Error::bad_request("invalid_query", e.body_text()))?;
    let status = q
        .status
        .as_deref()
        .map(|st| serde_json::from_value::<RequestStatus>(Value::String(st.to_ascii_uppercase())))
        .transpose()
        .map_err(|_| Error::bad_request("invalid_query", "status must be one of SUBMITTED, WAITING_FOR_APPROVAL, QUEUED, PROVISIONING, READY, FAILED, REJECTED, CANCELLED, DEPROVISIONING, DELETED, DELETE_FAILED"))?;
    let owner = q
        .owner
        .as_deref()
        .map(|o| OwnerRef::parse(o).map(|o| o.to_string()))
        .transpose()
        .map_err(|m| Error::bad_request("invalid_query", m))?;
    let requester = q
        .requester
        .as_deref()
        .map(|x| {
            EntityRef::parse(
                x,
                RefDefaults {
                    kind: Some("user"),
                    namespace: "default",
                },
            )
            .map(|e| e.canonical().to_string())
        })
        .transpose()
        .map_err(|m| Error::bad_request("invalid_query", m))?;
    let limit = q.limit.clamp(1, 1000);
    let status_name = status.map(|st| format!("{st:?}"));
    let filters = cursor::fingerprint(&[
        status_name.as_deref(),
        owner.as_deref(),
        requester.as_deref(),
        q.template.as_deref(),
        q.environment.as_deref(),
    ]);
    let after = q
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, &filters))
        .transpose()?;
    let mut items = s
        .requests
        .list(|r| {
            status.is_none_or(|st| r.status == st)
                && owner
                    .as_ref()
                    .is_none_or(|o| r.owner.eq_ignore_ascii_case(o))
                && requester
                    .as_ref()
                    .is_none_or(|u| r.requester.eq_ignore_ascii_case(u))
                && q.template.as_ref().is_none_or(|t| &r.template == t)
                && q.environment.as_ref().is_none_or(|e| &r.environment == e)
                && may_see(&s, &who, r)
        })
        .await?;
    let total = items.len();
    // Newest first; the id breaks ties, so the order is total and a cursor is exact.
    items.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let start = after.map_or(0, |p| {
        items.partition_point(|r| (r.created_at, &r.id) >= (p.created_at, &p.id))
    });
    let page = &items[start.min(items.len())..(start + limit).min(items.len())];
    let next = (start + page.len() < items.len())
        .then(|| page.last())
        .flatten()
        .map(|last| {
            cursor::encode(
                &filters,
                cursor::Position {
                    created_at: last.created_at,
                    id: last.id.clone(),
                },
            )
        });
    let page: Vec<Value> = page.iter().map(request_view).collect();
    Ok(axum::Json(json!({"items": page, "total": total, "nextCursor": next})).into_response())
}
