//! The HTTP edge every paved API function shares: errors as RFC 9457 problem+json in one
//! place, the caller's identity (a verified JWT locally, API Gateway's authorizer on Lambda),
//! and request bodies with a size limit.

mod auth;
#[cfg(feature = "bearer-tokens")]
mod bearer;
mod body;
mod edge;
mod fresh_catalog;
#[cfg(feature = "bearer-tokens")]
mod hs256;
pub mod lambda;
pub mod openapi;
mod problem;
mod request_context;

pub use auth::{Authenticator, Caller, GatewayClaims, RefusedClaims, parse_gateway_list};
#[cfg(feature = "bearer-tokens")]
pub use bearer::{TokenClaims, mint_token};
pub use body::{BodyLimit, bounded_body, read_body};
pub use edge::edge;
pub use fresh_catalog::fresh_catalog;
pub use problem::{ApiError, route_not_found};
pub use request_context::{X_REQUEST_ID, request_context};
