//! The catalog's OpenAPI document: generated from the handlers' `#[utoipa::path]` annotations,
//! and served from `openapi.json` beside this crate's manifest, which a test keeps equal to
//! the generated one. Building the document at run time linked utoipa's builders for every
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
    info(title = "paved catalog", description = "Backstage-compatible software catalog. Errors are RFC 9457 problem+json with a stable `code`."),
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
    ),
    modifiers(&BearerAuth),
    tags((name = "catalog", description = "The software catalog"))
)]
struct CatalogDoc;

/// The catalog function's OpenAPI document, generated.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CatalogDoc::openapi()
}

/// The generated document as served (`PAVED_UPDATE_OPENAPI=1 cargo test -p catalog-api
/// openapi` rewrites it).
const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_openapi_document_is_the_generated_one() {
        let generated = serde_json::to_value(openapi()).expect("serializes");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("PAVED_UPDATE_OPENAPI").is_some() {
            // In the document's own order (`openapi`, `info`, `paths`...), not sorted.
            let text = serde_json::to_string_pretty(&openapi()).expect("serializes");
            std::fs::write(path, text + "\n").expect("write openapi.json");
            return;
        }
        let served: serde_json::Value =
            serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        assert!(
            served == generated,
            "{path} is stale: run `PAVED_UPDATE_OPENAPI=1 cargo test -p catalog-api openapi`"
        );
    }
}
