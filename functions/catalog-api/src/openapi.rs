//! paved's OpenAPI document, every public route of every function: generated from the
//! handlers' `#[utoipa::path]` annotations (this crate's, and each function's `openapi()`),
//! and served by the catalog function from `openapi.json` beside this crate's manifest, which
//! `tests/openapi.rs` keeps equal to the generated one (the functions do not depend on one
//! another, so the whole document is put together there). Building the document at run time linked utoipa's builders for every
//! path and schema into the function (~0.2 MB of its bootstrap) to produce the same constant.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "paved", description = "An internal developer platform: a Backstage-compatible catalog, self-service requests, scorecards, DORA metrics, event ingestion and chat-ops. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        crate::read::query_entities,
        crate::read::list_entities,
        crate::read::entity_by_name,
        crate::read::entity_by_uid,
        crate::read::entities_by_refs,
        crate::read::entity_facets,
        crate::read::list_templates,
        crate::write::upsert_entity,
        crate::write::import_entities,
        crate::write::delete_by_uid,
        crate::scorecards::one,
        crate::scorecards::distribution,
        crate::scorecards::definitions,
        crate::scorecards::definition,
        serve,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "catalog", description = "The software catalog"),
        (name = "scorecards", description = "Scorecards over the catalog and the delivery metrics"),
    )
)]
struct CatalogDoc;

/// The catalog function's operations, with the document's info and security schemes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CatalogDoc::openapi()
}

/// The generated document as served (`PAVED_UPDATE_OPENAPI=1 cargo test -p paved-tests
/// --test openapi` rewrites it).
const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "catalog",
    responses((status = 200, description = "paved's OpenAPI document", content_type = "application/json")))]
pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
