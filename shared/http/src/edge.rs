//! What every HTTP entry point puts around its routes, on Lambda ([`crate::lambda::run`]) and
//! in `paved up` alike, so the two cannot drift: a problem+json 404 for a route the function
//! does not serve, and one span per request carrying its `x-request-id`.

use axum::Router;

/// `routes` with the problem+json fallback and the request-context span.
pub fn edge(routes: Router) -> Router {
    routes
        .fallback(crate::route_not_found)
        .layer(axum::middleware::from_fn(crate::request_context))
}
