//! Deployment event ingestion. Every sender's deliveries are verified, normalised into the
//! metrics spec's rows, written to the event store, and then de-duplicated by delivery id (a
//! conditional put, the delivery's last write, that also keeps the raw payload for replay).
//! The row writes are idempotent, so a crash before the id is recorded loses nothing: the
//! sender's redelivery writes the same rows again to the same end.
//!
//! Answers: 401 for a missing or wrong signature or an unconfigured source, 400 for a payload
//! that cannot be read, 202 with a reason for an event paved does not use, 202 with what was
//! recorded, and 200 for a delivery seen before.

pub mod normalized;
pub mod services;
pub mod signatures;
pub mod sources;

use paved_core::ErrorCode;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use paved_core::Error;
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::{Delivery, DeliveryStore};
use paved_core::ports::Clock;
use paved_http::{ApiError, Authenticator, Caller, read_body};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use normalized::{Normalized, Parsed, is_production};
use signatures::{Refusal, WebhookSecrets};

/// Each route's body limit, enforced while the body is read: before a signature is computed,
/// a token checked against it or a byte parsed (the token routes check the token before they
/// read anything). A larger body is a 413 `payload_too_large`.
pub mod limits {
    /// GitHub caps a delivery at 25 MB, and a `push` delivery lists every pushed commit (no
    /// count cap on webhooks) with up to 5,000 paths in each file list, so pushes are the large
    /// ones; the other events paved reads carry one object. No delivery over 6 MiB can be
    /// processed where paved is deployed: Lambda refuses an invocation over 6,291,456 bytes
    /// (the whole API Gateway event), so nothing larger is worth buffering, here or locally.
    pub const GITHUB: usize = 6 * 1024 * 1024;
    /// GitLab's push events list at most the 20 most recent commits; a merge request or issue
    /// event carries one description, which GitLab caps at 1,048,576 characters.
    pub const GITLAB: usize = 2 * 1024 * 1024;
    /// A PagerDuty v3 webhook carries one event about one incident (its documented examples
    /// are about 2 KB; titles are capped at 1,024 characters).
    pub const PAGERDUTY: usize = 256 * 1024;
    /// One CDEvent, a CloudEvent: the CloudEvents spec has intermediaries forward events of
    /// 64 KiB or less and producers keep to that.
    pub const CDEVENTS: usize = 64 * 1024;
    /// paved's batch: at most [`crate::sources::batch::MAX_ROWS`] rows at 800 bytes each (a
    /// row is 150-400 bytes; a deployment grows by 43 bytes per shipped change).
    pub const BATCH: usize = 4 * 1024 * 1024;
}

#[derive(Clone)]
pub struct IngestState {
    pub events: Arc<DeliveryStore>,
    pub catalog: Arc<CatalogRepository>,
    pub secrets: WebhookSecrets,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IngestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestState").finish_non_exhaustive()
    }
}

impl FromRef<IngestState> for Arc<Authenticator> {
    fn from_ref(state: &IngestState) -> Self {
        Arc::clone(&state.auth)
    }
}

pub fn router(state: IngestState) -> Router {
    Router::new()
        .route(
            "/v1/events/github",
            post(github).layer(DefaultBodyLimit::max(limits::GITHUB)),
        )
        .route(
            "/v1/events/gitlab",
            post(gitlab).layer(DefaultBodyLimit::max(limits::GITLAB)),
        )
        .route(
            "/v1/events/pagerduty",
            post(pagerduty).layer(DefaultBodyLimit::max(limits::PAGERDUTY)),
        )
        .route(
            "/v1/events/cdevents",
            post(cdevents).layer(DefaultBodyLimit::max(limits::CDEVENTS)),
        )
        .route(
            "/v1/events",
            post(batch).layer(DefaultBodyLimit::max(limits::BATCH)),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.catalog),
            paved_http::fresh_catalog,
        ))
        .with_state(state)
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refused(refusal: Refusal) -> ApiError {
    Error::Unauthenticated(refusal.message()).into()
}

fn malformed(message: impl Into<String>) -> ApiError {
    Error::bad_request(ErrorCode::MalformedPayload, message).into()
}

fn ignored(delivery: &str, reason: String) -> Answer {
    tracing::info!(delivery, reason, "event not used");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "ignored", "delivery": delivery, "reason": reason})),
    ))
}

impl IngestState {
    /// Writes the delivery's rows, then records its id (with the raw payload). Every row write
    /// is idempotent, so a crash (or an error) before the id is recorded loses nothing: the
    /// sender's redelivery finds no id and writes the same rows to the same end. A delivery
    /// whose id is recorded is a duplicate.
    async fn accept(&self, source: &str, delivery: &str, raw: &Value, parsed: Parsed) -> Answer {
        let duplicate = || {
            Ok((
                StatusCode::OK,
                Json(json!({"status": "duplicate", "delivery": delivery})),
            ))
        };
        if self.events.is_recorded(source, delivery).await? {
            return duplicate();
        }
        let rows = match parsed {
            Parsed::Ignore(reason) => {
                // Kept for replay all the same: paved may use the event one day.
                if self.record(source, delivery, raw).await? == Delivery::Duplicate {
                    return duplicate();
                }
                return ignored(delivery, reason);
            }
            Parsed::Use(rows) => rows,
        };
        self.write(&rows).await?;
        if self.record(source, delivery, raw).await? == Delivery::Duplicate {
            // A copy of it finished first; the rows were written to the same end twice.
            return duplicate();
        }
        let pushed: usize = rows.pushes.iter().map(|(_, commits)| commits.len()).sum();
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "accepted",
                "delivery": delivery,
                "recorded": {
                    "deployments": rows.deployments.len(),
                    "changes": pushed + rows.changes.len(),
                    "incidents": rows.incidents.len(),
                },
            })),
        ))
    }

    /// Records the delivery id: the last write of a delivery.
    async fn record(&self, source: &str, delivery: &str, raw: &Value) -> Result<Delivery, Error> {
        self.events
            .record_delivery(source, delivery, raw, self.clock.now())
            .await
    }

    async fn write(&self, rows: &Normalized) -> Result<(), Error> {
        for (service, commits) in &rows.pushes {
            self.events.push_commits(service, commits).await?;
        }
        for change in &rows.changes {
            self.events.save_change(change).await?;
        }
        for deployment in &rows.deployments {
            let ships_pending = deployment.changes.is_empty()
                && deployment.status.eq_ignore_ascii_case("success")
                && is_production(&deployment.environment);
            if ships_pending {
                self.events.ship_pending(deployment.clone()).await?;
            } else {
                self.events.save_deployment(deployment).await?;
            }
        }
        for incident in &rows.incidents {
            self.events.save_incident(incident).await?;
        }
        Ok(())
    }
}

paved_http::shared_answers! {
    /// What a signed webhook delivery answers, besides its size limit.
    WebhookAnswers = [
        (202, "Recorded (what was recorded), or ignored with the reason"),
        (200, "A delivery seen before"),
        (400, "A payload that cannot be read"),
        (401, "A missing or wrong signature, or the source is not configured"),
    ]
}

paved_http::shared_answers! {
    /// What an authenticated event post answers, besides its size limit.
    BatchAnswers = [
        (202, "Recorded, or ignored with the reason"),
        (200, "A delivery seen before"),
        (400, "A payload that cannot be read"),
        (401, "No or bad token"),
    ]
}

/// `POST /v1/events/github`.
/// A GitHub webhook delivery (deployment_status, push, pull_request, ...).
#[utoipa::path(post, path = "/v1/events/github", tag = "events",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC of the body>"), ("X-GitHub-Event" = String, Header), ("X-GitHub-Delivery" = String, Header)),
    request_body(content = Object, description = "The sender's own payload", content_type = "application/json"),
    responses(
        WebhookAnswers,
        (status = 413, description = "Over 6 MiB", content_type = "application/problem+json"),
    ))]
async fn github(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = read_body(body, limits::GITHUB)?;
    signatures::github(
        state.secrets.github.as_deref(),
        header(&headers, "x-hub-signature-256"),
        &body,
    )
    .map_err(refused)?;
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| malformed("the X-GitHub-Event header is missing"))?;
    let delivery = header(&headers, "x-github-delivery")
        .ok_or_else(|| malformed("the X-GitHub-Delivery header is missing"))?;
    let raw: Value =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let parsed = match sources::github::parse(event, &raw).map_err(malformed)? {
        Err(reason) => Parsed::Ignore(reason),
        Ok(event) => resolve(&state, services::GITHUB_SLUG, event),
    };
    state.accept("github", delivery, &raw, parsed).await
}

/// `POST /v1/events/gitlab`. The token is a header, so it is checked before the body is read.
/// A GitLab webhook delivery (deployment, push, merge request, issue).
#[utoipa::path(post, path = "/v1/events/gitlab", tag = "events",
    params(("X-Gitlab-Token" = String, Header, description = "The secret token"), ("X-Gitlab-Event" = String, Header), ("X-Gitlab-Event-UUID" = String, Header)),
    request_body(content = Object, description = "The sender's own payload", content_type = "application/json"),
    responses(
        WebhookAnswers,
        (status = 413, description = "Over 2 MiB", content_type = "application/problem+json"),
    ))]
async fn gitlab(State(state): State<IngestState>, request: Request) -> Answer {
    let headers = request.headers();
    signatures::gitlab(
        state.secrets.gitlab.as_deref(),
        header(headers, "x-gitlab-token"),
    )
    .map_err(refused)?;
    // GitLab names each delivery in X-Gitlab-Event-UUID (and Idempotency-Key on retries).
    let delivery = header(headers, "x-gitlab-event-uuid")
        .or_else(|| header(headers, "idempotency-key"))
        .or_else(|| header(headers, "x-gitlab-webhook-uuid"))
        .ok_or_else(|| malformed("the X-Gitlab-Event-UUID header is missing"))?
        .to_owned();
    let delivery = delivery.as_str();
    let body = read_body(Bytes::from_request(request, &()).await, limits::GITLAB)?;
    let raw: Value =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let parsed = match sources::gitlab::parse(&raw).map_err(malformed)? {
        Err(reason) => Parsed::Ignore(reason),
        Ok(event) => resolve(&state, services::GITLAB_SLUG, event),
    };
    state.accept("gitlab", delivery, &raw, parsed).await
}

/// The rows for the service a repository belongs to, or why there is none.
fn resolve(state: &IngestState, annotation: &str, event: normalized::RepoEvent) -> Parsed {
    let repository = event.repository.clone();
    match services::service_for(&state.catalog, annotation, &repository) {
        Some(service) => event.for_service(&service),
        None => Parsed::Ignore(format!(
            "repository {repository} is not in the catalog: annotate its Component with {annotation}: {repository}"
        )),
    }
}

/// `POST /v1/events/pagerduty` (v3 webhooks).
/// A PagerDuty v3 webhook delivery (incident triggered, resolved).
#[utoipa::path(post, path = "/v1/events/pagerduty", tag = "events",
    params(("X-PagerDuty-Signature" = String, Header, description = "v1=<HMAC of the body>")),
    request_body(content = Object, description = "The sender's own payload", content_type = "application/json"),
    responses(
        WebhookAnswers,
        (status = 413, description = "Over 256 KiB", content_type = "application/problem+json"),
    ))]
async fn pagerduty(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = read_body(body, limits::PAGERDUTY)?;
    signatures::pagerduty(
        state.secrets.pagerduty.as_deref(),
        header(&headers, "x-pagerduty-signature"),
        &body,
    )
    .map_err(refused)?;
    let raw: Value =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let event = sources::pagerduty::parse(&body).map_err(malformed)?;
    let parsed = match event.incident {
        Err(reason) => Parsed::Ignore(reason),
        Ok(mut incident) => {
            incident.service = event.pagerduty_service.as_deref().and_then(|id| {
                services::service_for(&state.catalog, services::PAGERDUTY_SERVICE, id)
            });
            Parsed::Use(Normalized {
                incidents: vec![incident],
                ..Normalized::default()
            })
        }
    };
    state
        .accept("pagerduty", &event.delivery_id, &raw, parsed)
        .await
}

/// `POST /v1/events/cdevents`: CDEvents from any authenticated caller (a CD system's token).
/// A CDEvents event (service.deployed, change.merged, incident.detected, ...), from an authenticated caller.
#[utoipa::path(post, path = "/v1/events/cdevents", tag = "events",
    request_body(content = Object, content_type = "application/json"),
    responses(
        BatchAnswers,
        (status = 413, description = "Over 64 KiB", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn cdevents(
    State(state): State<IngestState>,
    Caller(_caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    use sources::cdevents::Kind;
    let body = read_body(body, limits::CDEVENTS)?;
    let raw: Value =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let reading = sources::cdevents::parse(&body).map_err(malformed)?;
    let parsed = match reading.kind {
        Kind::Unused(reason) => Parsed::Ignore(reason),
        Kind::Deployed(deployment) => Parsed::Use(Normalized {
            deployments: vec![deployment],
            ..Normalized::default()
        }),
        Kind::Incident(incident) => Parsed::Use(Normalized {
            incidents: vec![incident],
            ..Normalized::default()
        }),
        Kind::Merged {
            repository,
            sha,
            at,
        } => {
            let service = [services::GITHUB_SLUG, services::GITLAB_SLUG]
                .into_iter()
                .find_map(|a| services::service_for(&state.catalog, a, &repository));
            match service {
                Some(service) => Parsed::Use(Normalized {
                    pushes: vec![(
                        service.clone(),
                        vec![sources::cdevents::change(&service, sha, at)],
                    )],
                    ..Normalized::default()
                }),
                None => Parsed::Ignore(format!(
                    "repository {repository} is not in the catalog: annotate its Component with {} or {}",
                    services::GITHUB_SLUG,
                    services::GITLAB_SLUG
                )),
            }
        }
    };
    state
        .accept("cdevents", &reading.delivery_id, &raw, parsed)
        .await
}

/// `POST /v1/events`: paved's batch format, for any authenticated caller. The delivery id is
/// the `Idempotency-Key` header, or else the body's SHA-256.
/// A batch of normalised rows (deployments, changes, incidents), from an authenticated caller.
#[utoipa::path(post, path = "/v1/events", tag = "events", params(("Idempotency-Key" = Option<String>, Header, description = "Scoped to the caller")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        BatchAnswers,
        (status = 413, description = "Over 4 MiB", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn batch(
    State(state): State<IngestState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = read_body(body, limits::BATCH)?;
    let rows = sources::batch::parse(&body).map_err(malformed)?;
    let raw: Value =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let delivery = match header(&headers, "idempotency-key") {
        Some(key) if !key.is_empty() => format!("{}:{key}", caller.user()),
        _ => hex::encode(Sha256::digest(&body)),
    };
    state
        .accept("batch", &delivery, &raw, Parsed::Use(rows))
        .await
}

/// This function's operations, for paved's OpenAPI document (`tests/openapi.rs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(
        paths(github, gitlab, pagerduty, cdevents, batch),
        tags((name = "events", description = "Deployment, change and incident events for the DORA metrics"))
    )]
    struct EventsDoc;
    EventsDoc::openapi()
}

/// The ingestion function as it runs on Lambda: the table from the environment, the catalog
/// (services' default branches), the webhook secrets, identity from API Gateway's authorizer
/// for the authenticated routes. `main.rs` runs it inside the shared edge.
pub async fn app_from_env() -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    use paved_wiring::{Backend, BackendConfig};
    let table = Backend::open_table(&BackendConfig::from_env()?).await?;
    let catalog = paved_wiring::load_catalog(&table).await?;
    let state = IngestState {
        events: Arc::new(DeliveryStore::new(table)),
        catalog,
        secrets: signatures::WebhookSecrets::from_env(),
        auth: Arc::new(Authenticator::Gateway),
        clock: Arc::new(paved_core::ports::SystemClock),
    };
    Ok(router(state))
}
