//! The requests function's part of paved's OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` annotations (the whole document is checked in beside the catalog function,
//! which serves it; `tests/openapi.rs` keeps the two equal).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::submit::create,
        crate::views::list,
        crate::views::one,
        crate::decide::approve,
        crate::decide::reject,
        crate::decide::cancel,
        crate::decide::deprovision,
        crate::resources::list,
        crate::resources::one,
        crate::resources::patch,
        crate::resources::reconcile,
        crate::resources::adopt,
    ),
    components(schemas(crate::submit::CreateRequest, crate::resources::ResourcePatchBody)),
    tags(
        (name = "requests", description = "Self-service requests and the resources they make"),
        (name = "resources", description = "Live resources: reconciliation status, drift, management policy"),
    )
)]
struct RequestsDoc;

/// This function's operations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    RequestsDoc::openapi()
}
