//! The catalog function: Backstage's catalog REST contract under `/api/catalog`, paved's write
//! API under `/v1/entities`, and the OpenAPI document. `main.rs` runs it on Lambda; `paved up`
//! serves the same router locally.

pub mod config;
pub mod lambda;
mod openapi;
mod params;
mod read;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
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
#[derive(Clone)]
pub struct CatalogState {
    pub repo: Arc<CatalogRepository>,
    pub policy: Arc<AccessPolicy>,
    pub limits: Limits,
}

/// The catalog's routes. Every route needs an authenticated caller.
pub fn router(state: CatalogState, auth: Arc<Authenticator>) -> Router {
    let limits = state.limits;
    let backstage = Router::new()
        .route("/entities", get(read::list_entities))
        .route("/entities/by-query", get(read::query_entities))
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}",
            get(read::entity_by_name),
        )
        .route(
            "/entities/by-uid/{uid}",
            get(read::entity_by_uid).delete(write::delete_by_uid),
        )
        .route(
            "/entities/by-refs",
            post(read::entities_by_refs).layer(DefaultBodyLimit::max(limits.entity_body)),
        )
        .route("/entity-facets", get(read::entity_facets));
    let own = Router::new()
        .route(
            "/entities",
            post(write::upsert_entity).layer(DefaultBodyLimit::max(limits.entity_body)),
        )
        .route(
            "/entities/import",
            post(write::import_entities).layer(DefaultBodyLimit::max(limits.import_body)),
        )
        .route("/entities/by-uid/{uid}", delete(write::delete_by_uid));
    Router::new()
        .nest("/api/catalog", backstage)
        .nest("/v1", own)
        .route("/openapi.json", get(openapi::serve))
        .with_state(state)
        .layer(Extension(auth))
}
