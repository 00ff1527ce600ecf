//! `GET /v1/metrics/dora`: the latest DORA report the scheduled `dora-report` function stored,
//! whole or for one scope. Reading is cheap and needs no analytics engine, so this function
//! stays small while the heavy computation runs on a schedule.

use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use paved_core::Error;
use paved_core::events::EventStore;
use paved_http::{ApiError, Authenticator, BodyLimit, Caller, bounded_body};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct MetricsState {
    pub events: Arc<EventStore>,
    pub auth: Arc<Authenticator>,
}

impl FromRef<MetricsState> for Arc<Authenticator> {
    fn from_ref(state: &MetricsState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The routes are GETs, which carry no body; a kilobyte is room for a client that sends an
/// empty JSON object all the same. A larger body is a 413 `payload_too_large`.
pub const BODY_LIMIT: usize = 1024;

pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/v1/metrics/dora", get(dora))
        .route("/v1/metrics/adoption", get(adoption))
        .layer(middleware::from_fn_with_state(
            BodyLimit(BODY_LIMIT),
            bounded_body,
        ))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct DoraQuery {
    /// `org`, `team:<name>` or `service:<name>`; absent for the whole report.
    scope: Option<String>,
}

/// Which part of the report a caller asked for.
enum Scope<'a> {
    Org,
    Team(&'a str),
    Service(&'a str),
}

impl<'a> Scope<'a> {
    fn parse(text: &'a str) -> Result<Self, Error> {
        match text.split_once(':') {
            None if text == "org" => Ok(Self::Org),
            Some(("team", name)) if !name.is_empty() => Ok(Self::Team(name)),
            Some(("service", name)) if !name.is_empty() => Ok(Self::Service(name)),
            _ => Err(Error::bad_request(
                "invalid_scope",
                format!("scope {text:?} must be org, team:<name> or service:<name>"),
            )),
        }
    }
}

/// The latest DORA report, whole or for one scope.
#[utoipa::path(get, path = "/v1/metrics/dora", tag = "metrics",
    params(("scope" = Option<String>, Query, description = "org, team:<name> or service:<name>")),
    responses(
        (status = 200, description = "The figures"),
        (status = 400, description = "A scope that cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No report yet, or no such scope", content_type = "application/problem+json"),
        (status = 413, description = "A body over 1 KiB", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn dora(
    State(state): State<MetricsState>,
    Caller(_caller): Caller,
    Query(query): Query<DoraQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = query.scope.as_deref().map(Scope::parse).transpose()?;
    let Some((report, computed_at)) = state.events.latest_report().await? else {
        return Err(Error::NotFound(
            "the DORA report (it is computed on a schedule; none has run yet)".into(),
        )
        .into());
    };
    let Some(scope) = scope else {
        let mut whole = report;
        if let Value::Object(map) = &mut whole {
            map.insert("computed_at".into(), json!(computed_at));
        }
        return Ok(Json(whole));
    };
    let (label, metrics) = match scope {
        Scope::Org => ("org".to_owned(), report.get("org").cloned()),
        Scope::Team(name) => (format!("team:{name}"), find(&report, "teams", "team", name)),
        Scope::Service(name) => (
            format!("service:{name}"),
            find(&report, "services", "service", name),
        ),
    };
    let metrics = metrics.ok_or_else(|| Error::NotFound(format!("{label} in the DORA report")))?;
    Ok(Json(json!({
        "scope": label,
        "spec_version": report.get("spec_version"),
        "edition": report.get("edition"),
        "window": report.get("window"),
        "computed_at": computed_at,
        "metrics": metrics,
    })))
}

fn find(report: &Value, list: &str, field: &str, name: &str) -> Option<Value> {
    report
        .get(list)?
        .as_array()?
        .iter()
        .find(|entry| entry.get(field).and_then(Value::as_str) == Some(name))
        .cloned()
}

/// `GET /v1/metrics/adoption?scope=org|team:X`: the platform adoption figures the DORA job
/// stored (whole without a scope).
/// Golden-path adoption, whole or for one scope.
#[utoipa::path(get, path = "/v1/metrics/adoption", tag = "metrics",
    params(("scope" = Option<String>, Query, description = "org, team:<name> or service:<name>")),
    responses(
        (status = 200, description = "The figures"),
        (status = 400, description = "A scope that cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No report yet, or no such scope", content_type = "application/problem+json"),
        (status = 413, description = "A body over 1 KiB", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn adoption(
    State(state): State<MetricsState>,
    Caller(_caller): Caller,
    Query(query): Query<DoraQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = query.scope.as_deref().map(Scope::parse).transpose()?;
    let Some((report, computed_at)) = state.events.latest_adoption().await? else {
        return Err(Error::NotFound(
            "the adoption figures (they are computed with the DORA report; none has run yet)"
                .into(),
        )
        .into());
    };
    let (label, figures) = match scope {
        None => {
            let mut whole = report;
            if let Value::Object(map) = &mut whole {
                map.insert("computed_at".into(), json!(computed_at));
            }
            return Ok(Json(whole));
        }
        Some(Scope::Org) => ("org".to_owned(), report.get("org").cloned()),
        Some(Scope::Team(name)) => (format!("team:{name}"), find(&report, "teams", "team", name)),
        Some(Scope::Service(_)) => {
            return Err(Error::bad_request(
                "invalid_scope",
                "adoption is per team or for the org: scope=org or team:<name>",
            )
            .into());
        }
    };
    let figures =
        figures.ok_or_else(|| Error::NotFound(format!("{label} in the adoption figures")))?;
    Ok(Json(json!({
        "scope": label,
        "spec_version": report.get("spec_version"),
        "to": report.get("to"),
        "weeks": report.get("weeks"),
        "computed_at": computed_at,
        "figures": figures,
    })))
}

/// This function's operations, for paved's OpenAPI document (`tests/openapi.rs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(
        paths(dora, adoption),
        tags((name = "metrics", description = "DORA metrics and adoption"))
    )]
    struct MetricsDoc;
    MetricsDoc::openapi()
}
