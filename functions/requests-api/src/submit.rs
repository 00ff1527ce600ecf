//! Submitting a request: parse, check against the template and the guardrails, record it,
//! then queue it (or wait for an approval). `Idempotency-Key` makes a retried POST return
//! the request the first one made.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_chat::notify::{ChatEvent, ChatNotification};
use paved_core::Error;
use paved_core::auth::Identity;
use paved_core::catalog::{EntityRef, Kind, OwnerRef, validate_parameters};
use paved_core::idempotency::NextAction;
use paved_core::policy::PolicyViolation;
use paved_core::ports::{QueueMessage, WorkflowError};
use paved_core::provisioning::{PlannedStep, ResourceSpec};
use paved_core::requests::{NewRequest, ProvisioningRequest, RequestId, RequestStatus};
use paved_http::{ApiError, Caller, read_body};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::RequestsState;
use crate::views::request_view;

use crate::BODY_LIMIT;

/// The body of `POST /v1/requests`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A golden path's name (`GET /v1/templates`).
    pub template: String,
    /// The resource's name, as the guardrails' naming rule allows.
    pub name: String,
    /// The owning Group (or User): `team-a` or `group:default/team-a`.
    pub owner: String,
    pub environment: String,
    /// The template's parameters, checked against its JSON Schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateQuery {
    #[serde(default)]
    dry_run: bool,
}

/// A request that passed every check and may be recorded.
struct Checked {
    new: NewRequest,
    plan: Vec<PlannedStep>,
    violations: Vec<PolicyViolation>,
}

/// Asks for a resource from a golden path: 202 with the request (or 200 with the plan and the
/// guardrails' verdicts for a dry run).
#[utoipa::path(post, path = "/v1/requests", tag = "requests",
    params(
        ("dryRun" = Option<bool>, Query, description = "Check and plan only; nothing is recorded"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same request"),
    ),
    request_body(content = CreateRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The request, recorded and queued (or waiting for an approval)"),
        (status = 200, description = "A dry run's verdict and plan"),
        (status = 400, description = "The body or a header cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not a member of the owner", content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still being submitted", content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", content_type = "application/problem+json"),
        (status = 422, description = "Unknown template or owner, bad parameters, a guardrail refuses, the name is taken", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| Error::bad_request("invalid_query", e.body_text()))?;
    let body = read_body(body, BODY_LIMIT)?;
    let raw: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    let input: CreateRequest = serde_json::from_value(raw.clone()).map_err(|e| Error::Invalid {
        code: "invalid_request",
        message: format!(
            "the request body does not fit {{template, name, owner, environment, parameters}}: {e}"
        ),
        violations: Vec::new(),
    })?;
    let key = idempotency_key(&headers)?;

    if query.dry_run {
        let checked = check(&s, &who, &input, "dry-run").await?;
        let body = json!({
            "dryRun": true,
            "allowed": checked.violations.is_empty(),
            "needsApproval": checked.new.needs_approval,
            "violations": checked.violations,
            "resourceType": checked.new.resource_type,
            "parameters": checked.new.parameters,
            "plan": checked.plan,
        });
        return Ok(axum::Json(body).into_response());
    }

    let Some(key) = key else {
        let id = RequestId::random().to_string();
        let request = submit(&s, &who, &input, &id).await?;
        return Ok(accepted(&request, false));
    };
    // Keys are per caller, so one user's key never collides with another's.
    let scoped = format!("{}#{key}", who.user().key());
    let id = RequestId::for_digest(&hex::encode(Sha256::digest(scoped.as_bytes()))).to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match s
            .idempotency
            .try_acquire(&scoped, &raw, Duration::from_secs(60))
            .await?
        {
            NextAction::Execute(lease) => {
                return match submit(&s, &who, &input, &id).await {
                    Ok(request) => {
                        s.idempotency
                            .complete(&scoped, &lease, &raw, &json!({"requestId": request.id}))
                            .await?;
                        Ok(accepted(&request, false))
                    }
                    Err(e) => {
                        s.idempotency.release(&scoped, &lease).await?;
                        Err(e.into())
                    }
                };
            }
            NextAction::Replay(data) => {
                let id = data.get("requestId").and_then(Value::as_str).unwrap_or(&id);
                let request = s.requests.get(id).await?;
                return Ok(accepted(&request, true));
            }
            NextAction::InProgress if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            NextAction::InProgress => {
                return Err(Error::Conflict(
                    "a request with this Idempotency-Key is still being submitted; retry shortly"
                        .into(),
                )
                .into());
            }
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            Error::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

fn accepted(request: &ProvisioningRequest, replayed: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, axum::Json(request_view(request))).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/requests/{}", request.id)) {
        headers.insert("location", location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Every check a request must pass, with no side effect (a dry run stops here).
async fn check(
    s: &RequestsState,
    who: &Identity,
    input: &CreateRequest,
    id: &str,
) -> Result<Checked, Error> {
    let invalid = |code: &'static str, message: String| Error::Invalid {
        code,
        message,
        violations: Vec::new(),
    };
    let template = {
        let catalog = s.catalog.read();
        catalog
            .get_by_ref(&EntityRef::new("template", "default", &input.template))
            .map(|v| serde_json::from_slice::<Value>(&v.json))
            .transpose()
            .map_err(|e| invalid("invalid_template", e.to_string()))?
    }
    .ok_or_else(|| {
        invalid(
            "unknown_template",
            format!(
                "there is no template named {:?}; GET /v1/templates lists them",
                input.template
            ),
        )
    })?;
    let resource_type = template
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !s.planners.contains_key(&resource_type) {
        let why = s
            .unavailable
            .get(&resource_type)
            .cloned()
            .unwrap_or_else(|| {
                format!("paved has no driver for the resource type {resource_type:?}")
            });
        return Err(invalid("driver_not_configured", why));
    }
    let mut parameters = input.parameters.clone().unwrap_or_else(|| json!({}));
    apply_defaults(&template, &mut parameters);
    validate_parameters(&template, &parameters)?;

    let owner = OwnerRef::parse(&input.owner)
        .map_err(|m| invalid("invalid_owner", format!("owner: {m}")))?;
    let owner_exists = s
        .catalog
        .read()
        .get_by_ref(owner.entity_ref())
        .is_some_and(|v| matches!(v.kind, Kind::Group | Kind::User));
    if !owner_exists {
        return Err(invalid(
            "unknown_owner",
            format!("the owner {owner} is not a group or user in the catalog"),
        ));
    }
    if !who.is(owner.entity_ref()) && !s.access.is_admin(who) {
        return Err(Error::Forbidden(format!(
            "you are not a member of {owner}, so you cannot request resources it owns"
        )));
    }

    let steps: Vec<String> = template
        .pointer("/spec/steps")
        .and_then(Value::as_array)
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if steps.is_empty() {
        return Err(invalid(
            "invalid_template",
            format!("template {} has no steps", input.template),
        ));
    }
    let owner_ref = owner.to_string();
    let verdict = s.guardrails.evaluate_request(&json!({
        "request": {
            "template": input.template, "name": input.name, "owner": owner_ref,
            "environment": input.environment, "parameters": parameters, "requester": who.user().to_string(),
        },
        "template": {
            "name": input.template,
            "environments": template.pointer("/spec/environments").cloned().unwrap_or_else(|| json!([])),
        },
        "usage": {"team_active_resources": s.requests.live_count(&owner_ref).await?},
    }))?;
    let spec = ResourceSpec {
        request_id: id.to_owned(),
        name: input.name.clone(),
        owner: owner_ref.clone(),
        environment: input.environment.clone(),
        parameters: parameters.clone(),
    };
    let plan = if verdict.violations.is_empty() {
        s.planners[&resource_type]
            .plan(&spec)
            .map_err(|e| invalid("plan_failed", e.to_string()))?
    } else {
        Vec::new()
    };
    Ok(Checked {
        new: NewRequest {
            id: id.to_owned(),
            template: input.template.clone(),
            resource_type,
            name: input.name.clone(),
            owner: owner_ref,
            environment: input.environment.clone(),
            parameters,
            requester: who.user().to_string(),
            steps,
            needs_approval: verdict.needs_approval,
        },
        plan,
        violations: verdict.violations,
    })
}

/// Fills in the `default` of each top-level property the request left out.
fn apply_defaults(template: &Value, parameters: &mut Value) {
    let Value::Object(params) = parameters else {
        return;
    };
    let pages = match template.pointer("/spec/parameters") {
        Some(Value::Array(pages)) => pages.iter().collect::<Vec<_>>(),
        Some(page) => vec![page],
        None => Vec::new(),
    };
    for page in pages {
        if let Some(Value::Object(props)) = page.get("properties") {
            for (name, schema) in props {
                if let Some(default) = schema.get("default") {
                    params
                        .entry(name.clone())
                        .or_insert_with(|| default.clone());
                }
            }
        }
    }
}

/// Records a checked request and queues it, or leaves it waiting for an approval.
async fn submit(
    s: &RequestsState,
    who: &Identity,
    input: &CreateRequest,
    id: &str,
) -> Result<ProvisioningRequest, Error> {
    let checked = check(s, who, input, id).await?;
    if !checked.violations.is_empty() {
        return Err(Error::PolicyDenied(checked.violations));
    }
    let request = match s.requests.create(checked.new).await {
        Ok(r) => r,
        // A keyed request whose first attempt died after recording it: carry on with it.
        Err(Error::Conflict(_)) => s.requests.get(id).await?,
        Err(e) => return Err(e),
    };
    tracing::info!(request_id = %request.id, template = %request.template, user = %who.user(), "request submitted");
    match request.status {
        RequestStatus::Submitted if request.needs_approval => {
            let waiting = s
                .requests
                .transition(
                    &request.id,
                    RequestStatus::WaitingForApproval,
                    "the guardrails require an approval",
                )
                .await?;
            notify_approvers(s, &waiting.id).await;
            Ok(waiting)
        }
        RequestStatus::Submitted => queue(s, &request.id, "no approval needed").await,
        RequestStatus::Queued => start_execution(s, request).await,
        _ => Ok(request),
    }
}

/// Tells the approvers (through the notifications queue, which the worker delivers to Slack).
/// The request is recorded either way; a failed send is logged, and the request can still be
/// approved from the API or a `/paved status` reply's buttons.
async fn notify_approvers(s: &RequestsState, id: &str) {
    let note = ChatNotification::new(id, ChatEvent::ApprovalNeeded);
    if let Err(e) = s
        .tasks
        .send(&s.notification_queue, QueueMessage::new(note.to_json()))
        .await
    {
        tracing::error!(request_id = %id, error = %e, "the approval notification was not queued");
    }
}

/// QUEUED, then the state machine is started (named after the request: starting twice is one
/// execution). If the start fails the request stays QUEUED and [`resume_queued`] retries it.
pub(crate) async fn queue(
    s: &RequestsState,
    id: &str,
    why: &str,
) -> Result<ProvisioningRequest, Error> {
    let request = s
        .requests
        .transition(id, RequestStatus::Queued, why)
        .await?;
    start_execution(s, request).await
}

pub(crate) async fn start_execution(
    s: &RequestsState,
    request: ProvisioningRequest,
) -> Result<ProvisioningRequest, Error> {
    let input = execution_input(&request);
    match s.workflow.start_execution(&request.id, &input).await {
        Ok(_) | Err(WorkflowError::ExecutionAlreadyExists(_)) => {}
        Err(e) => {
            tracing::error!(request_id = %request.id, error = %e, "starting the execution failed; it will be retried")
        }
    }
    Ok(request)
}

fn execution_input(r: &ProvisioningRequest) -> Value {
    let spec = ResourceSpec {
        request_id: r.id.clone(),
        name: r.name.clone(),
        owner: r.owner.clone(),
        environment: r.environment.clone(),
        parameters: r.parameters.clone(),
    };
    json!({
        "requestId": r.id,
        "resourceType": r.resource_type,
        "spec": spec,
        "steps": r.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
    })
}

/// Starts the execution of every QUEUED request (idempotent): `paved up` runs it at start-up
/// and every minute, so a crash between recording a request and starting it loses nothing.
pub async fn resume_queued(s: &RequestsState) -> Result<usize, Error> {
    let queued = s
        .requests
        .list(|r| r.status == RequestStatus::Queued)
        .await?;
    let n = queued.len();
    for r in queued {
        start_execution(s, r).await?;
    }
    Ok(n)
}
