//! Scorecards over the catalog and the delivery metrics:
//!
//! - `GET /v1/scorecards/{entityRef}` (`?scorecard=`): one entity's level and every rule's
//!   result (`payments`, `component:payments`, or `component:default/payments`, with the slash
//!   as is or encoded);
//! - `GET /v1/scorecards?team=` (`&scorecard=`): the level distribution of a team's entities
//!   (the organisation's without `team`) and the rules failing most often;
//! - `GET /v1/scorecard-definitions` and `GET /v1/scorecard-definitions/{id}?format=paved|port|cortex`:
//!   the definitions, and their export to Port's and Cortex's formats.

use paved_core::ErrorCode;
use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use paved_core::Error;
use paved_core::catalog::{CatalogRepository, EntityRef, RefDefaults};
use paved_core::delivery::DeliveryStore;
use paved_core::scorecards::{self, MetricsSnapshot, Scorecard, ScorecardSet, export};
use paved_http::{ApiError, Authenticator, BodyLimit, Caller, bounded_body};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ScorecardsState {
    pub catalog: Arc<CatalogRepository>,
    pub events: Arc<DeliveryStore>,
    pub cards: Arc<ScorecardSet>,
    pub auth: Arc<Authenticator>,
}

impl FromRef<ScorecardsState> for Arc<Authenticator> {
    fn from_ref(state: &ScorecardsState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The routes are GETs; a body past a kilobyte is refused (413) rather than read and ignored.
pub const BODY_LIMIT: usize = 1024;

pub fn router(state: ScorecardsState) -> Router {
    Router::new()
        .route("/v1/scorecards", get(distribution))
        .route("/v1/scorecards/{*entity_ref}", get(one))
        .route("/v1/scorecard-definitions", get(definitions))
        .route("/v1/scorecard-definitions/{id}", get(definition))
        .layer(axum::middleware::from_fn_with_state(
            BodyLimit(BODY_LIMIT),
            bounded_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.catalog),
            paved_http::fresh_catalog,
        ))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorecardQuery {
    scorecard: Option<String>,
    team: Option<String>,
}

fn card<'a>(cards: &'a ScorecardSet, id: Option<&str>) -> Result<&'a Scorecard, Error> {
    match id {
        None => Ok(cards.default_card()),
        Some(id) => cards
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("the scorecard {id}"))),
    }
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> ApiError {
    Error::bad_request(ErrorCode::InvalidQuery, e.body_text()).into()
}

/// One entity's scorecard.
#[utoipa::path(get, path = "/v1/scorecards/{entityRef}", tag = "scorecards",
    params(
        ("entityRef" = String, Path, description = "payments, component:payments or component:default/payments"),
        ("scorecard" = Option<String>, Query, description = "A definition's id; the default scorecard otherwise"),
    ),
    responses(
        (status = 200, description = "The entity's level and every rule's result"),
        (status = 400, description = "A ref or query that cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No such entity or scorecard", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn one(
    State(s): State<ScorecardsState>,
    Caller(_who): Caller,
    Path(entity_ref): Path<String>,
    query: Result<Query<ScorecardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let card = card(&s.cards, query.scorecard.as_deref())?;
    let entity_ref = EntityRef::parse(
        entity_ref.trim_start_matches('/'),
        RefDefaults {
            kind: Some("component"),
            namespace: "default",
        },
    )
    .map_err(|m| Error::bad_request(ErrorCode::InvalidEntityRef, m))?;
    let metrics = MetricsSnapshot::load(&s.events).await?;
    let index = s.catalog.read();
    let view = index
        .get_by_ref(&entity_ref)
        .ok_or_else(|| Error::NotFound(entity_ref.to_string()))?;
    let evaluation = scorecards::score(card, &index, view, &metrics);
    Ok(Json(
        serde_json::to_value(evaluation).unwrap_or(Value::Null),
    ))
}

/// The level distribution of a team (or the organisation).
#[utoipa::path(get, path = "/v1/scorecards", tag = "scorecards",
    params(
        ("team" = Option<String>, Query, description = "team-a or group:default/team-a; the organisation otherwise"),
        ("scorecard" = Option<String>, Query, description = "A definition's id; the default scorecard otherwise"),
    ),
    responses(
        (status = 200, description = "How many entities hold each level, and the rules failing most often"),
        (status = 400, description = "A query that cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No such team or scorecard", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn distribution(
    State(s): State<ScorecardsState>,
    Caller(_who): Caller,
    query: Result<Query<ScorecardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let card = card(&s.cards, query.scorecard.as_deref())?;
    // `team-a` or `group:default/team-a`: teams are Groups, named by their name.
    let team = query
        .team
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            EntityRef::parse(
                t,
                RefDefaults {
                    kind: Some("group"),
                    namespace: "default",
                },
            )
            .map_err(|m| Error::bad_request(ErrorCode::InvalidQuery, format!("team: {m}")))
        })
        .transpose()?;
    let metrics = MetricsSnapshot::load(&s.events).await?;
    let index = s.catalog.read();
    if let Some(t) = &team
        && index.get_by_ref(t).is_none()
    {
        return Err(Error::NotFound(t.to_string()).into());
    }
    let d = scorecards::distribution(card, &index, &metrics, team.as_ref().map(EntityRef::name));
    Ok(Json(serde_json::to_value(d).unwrap_or(Value::Null)))
}

/// Every scorecard definition.
#[utoipa::path(get, path = "/v1/scorecard-definitions", tag = "scorecards",
    responses(
        (status = 200, description = "{items: [definition]}"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn definitions(State(s): State<ScorecardsState>, Caller(_who): Caller) -> Json<Value> {
    Json(json!({"items": s.cards.cards}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
}

/// One definition: as paved keeps it (JSON), or exported for Port (JSON) or Cortex (YAML).
#[utoipa::path(get, path = "/v1/scorecard-definitions/{id}", tag = "scorecards",
    params(
        ("id" = String, Path),
        ("format" = Option<String>, Query, description = "paved (default), port or cortex"),
    ),
    responses(
        (status = 200, description = "The definition (application/yaml for cortex)"),
        (status = 400, description = "An unknown format", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No such scorecard", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn definition(
    State(s): State<ScorecardsState>,
    Caller(_who): Caller,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let card = card(&s.cards, Some(&id))?;
    Ok(match query.format.as_deref().unwrap_or("paved") {
        "paved" => Json(serde_json::to_value(card).unwrap_or(Value::Null)).into_response(),
        "port" => Json(export::to_port(card)).into_response(),
        "cortex" => (
            [(header::CONTENT_TYPE, "application/yaml")],
            export::to_cortex(card),
        )
            .into_response(),
        other => {
            return Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("format {other:?} is not one of paved, port, cortex"),
            )
            .into());
        }
    })
}
