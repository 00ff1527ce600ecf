use axum::Json;
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

/// The catalog function's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CatalogDoc::openapi()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
