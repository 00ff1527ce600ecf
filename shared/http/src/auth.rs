//! Who is calling. Locally paved verifies an HS256 bearer JWT itself; on Lambda, API Gateway's
//! JWT authorizer has verified it already and its claims arrive in the request context (the
//! entry point copies them into [`GatewayClaims`]). Either way the handler sees an
//! [`Identity`](paved_core::auth::Identity).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use paved_core::Error;
use paved_core::auth::Identity;

use crate::ApiError;

/// Claims an API Gateway JWT authorizer verified, as the Lambda entry point found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayClaims {
    pub sub: String,
    pub groups: Vec<String>,
}

/// How this host learns who is calling.
pub enum Authenticator {
    /// Verify `Authorization: Bearer <jwt>` (HS256) with this secret.
    #[cfg(feature = "bearer-tokens")]
    Hs256(Box<crate::bearer::Hs256Verifier>),
    /// Trust [`GatewayClaims`] in the request extensions, which only the Lambda entry point
    /// puts there, from API Gateway's authorizer context. Headers are never trusted.
    Gateway,
}

impl Authenticator {
    pub fn authenticate(&self, parts: &Parts) -> Result<Arc<Identity>, Error> {
        match self {
            Self::Gateway => {
                let claims = parts.extensions.get::<GatewayClaims>().ok_or_else(|| {
                    Error::Unauthenticated("the request carries no authorizer claims; it must come through the API Gateway JWT authorizer".into())
                })?;
                Identity::from_claims(&claims.sub, &claims.groups).map(Arc::new)
            }
            #[cfg(feature = "bearer-tokens")]
            Self::Hs256(verifier) => verifier.authenticate(parts),
        }
    }
}

/// API Gateway flattens array claims into strings such as `[a b]` (or JSON `["a","b"]`);
/// this reads any of those forms.
pub fn parse_gateway_list(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|s| s.trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The authenticated caller, as an axum extractor, for any router state that can hand out
/// the host's [`Authenticator`].
pub struct Caller(pub Arc<Identity>);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.authenticate(parts).map(Caller).map_err(ApiError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_lists_in_every_form() {
        assert_eq!(parse_gateway_list("[a b]"), ["a", "b"]);
        assert_eq!(parse_gateway_list(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(parse_gateway_list("a"), ["a"]);
        assert!(parse_gateway_list("[]").is_empty());
    }
}
