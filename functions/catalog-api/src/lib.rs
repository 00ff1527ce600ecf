//! The catalog function: Backstage's catalog REST contract under `/api/catalog`, paved's write
//! API under `/v1/entities`, and the OpenAPI document. `main.rs` runs it on Lambda; `paved up`
//! serves the same router locally. Scorecards over the catalog are [`scorecards::router`].

pub mod config;
pub mod openapi;
mod params;
mod read;
pub mod scorecards;
mod write;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_http::Authenticator;

pub use openapi::openapi;

/// Body size limits, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `POST /v1/entities` and `POST /api/catalog/entities/by-refs`.
    pub entity_body: usize,
    /// `POST /v1/entities/import`.
    pub import_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            entity_body: 1024 * 1024,
            import_body: 64 * 1024 * 1024,
        }
    }
}

/// What the catalog handlers share.
#[derive(Debug, Clone)]
pub struct CatalogState {
    pub repo: Arc<CatalogRepository>,
    pub policy: Arc<AccessPolicy>,
    pub limits: Limits,
    /// How callers are identified; every route needs one.
    pub auth: Arc<Authenticator>,
}

impl FromRef<CatalogState> for Arc<Authenticator> {
    fn from_ref(state: &CatalogState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The catalog's routes, flat (nested routers cost a prefix strip and a second route
/// match per request). Every route needs an authenticated caller.
pub fn router(state: CatalogState) -> Router {
    let limits = state.limits;
    let entity_limit = DefaultBodyLimit::max(limits.entity_body);
    Router::new()
        .route("/api/catalog/entities", get(read::list_entities))
        .route("/api/catalog/entities/by-query", get(read::query_entities))
        .route(
            "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
            get(read::entity_by_name),
        )
        .route(
            "/api/catalog/entities/by-uid/{uid}",
            get(read::entity_by_uid).delete(write::delete_by_uid),
        )
        .route(
            "/api/catalog/entities/by-refs",
            post(read::entities_by_refs).layer(entity_limit),
        )
        .route("/api/catalog/entity-facets", get(read::entity_facets))
        .route(
            "/v1/entities",
            post(write::upsert_entity).layer(entity_limit),
        )
        .route(
            "/v1/entities/import",
            post(write::import_entities).layer(DefaultBodyLimit::max(limits.import_body)),
        )
        .route("/v1/entities/by-uid/{uid}", delete(write::delete_by_uid))
        .route("/v1/templates", get(read::list_templates))
        .route("/openapi.json", get(openapi::serve))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.repo),
            paved_http::fresh_catalog,
        ))
        .with_state(state)
}

/// Adds the golden paths paved ships to the catalog, where they are missing.
pub async fn install_default_templates(repo: &CatalogRepository) -> Result<(), paved_core::Error> {
    let templates = paved_core::catalog::parse_documents(paved_core::catalog::DEFAULT_TEMPLATES)?;
    let outcome = repo.install_missing(templates).await?;
    if outcome.created > 0 {
        tracing::info!(created = outcome.created, "default golden paths installed");
    }
    Ok(())
}

/// The catalog function as it runs on Lambda: its settings from the environment
/// ([`config::CatalogConfig`]), the catalog loaded and the golden paths installed, identity
/// from API Gateway's authorizer, and the catalog and scorecard routes. `main.rs` runs it
/// inside the shared edge ([`paved_http::lambda::run`]).
pub async fn app_from_env() -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    use paved_core::delivery::DeliveryStore;
    use paved_core::scorecards::ScorecardSet;
    let config = config::CatalogConfig::from_env()?;
    let table = paved_wiring::Backend::open_table(&config.backend).await?;
    let repo = paved_wiring::load_catalog(&table).await?;
    install_default_templates(&repo).await?;
    let state = CatalogState {
        repo,
        policy: Arc::new(AccessPolicy::new(&config.admin_group)?),
        limits: config.limits,
        auth: Arc::new(Authenticator::Gateway),
    };
    let scorecards = scorecards::ScorecardsState {
        catalog: Arc::clone(&state.repo),
        events: Arc::new(DeliveryStore::new(table)),
        cards: Arc::new(ScorecardSet::from_env()?),
        auth: Arc::clone(&state.auth),
    };
    Ok(router(state).merge(scorecards::router(scorecards)))
}
