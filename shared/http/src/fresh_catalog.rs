//! Bounded staleness for the catalog's read model: before a handler runs, the read model is
//! caught up with the catalog's change log if it is older than the bound
//! ([`CatalogOptions::max_staleness`](paved_core::catalog::CatalogOptions)). A Lambda
//! container frozen between invocations has no background task to do it, so it is done on
//! the way in; when the read model is fresh it costs a clock read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use paved_core::catalog::CatalogRepository;

use crate::ApiError;

/// Middleware: `router.layer(axum::middleware::from_fn_with_state(catalog, fresh_catalog))`.
/// A store that cannot be read answers 5xx rather than a possibly stale catalog.
pub async fn fresh_catalog(
    State(catalog): State<Arc<CatalogRepository>>,
    request: Request,
    next: Next,
) -> Response {
    match catalog.refresh().await {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}
