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

/// Authorizer claims the Lambda entry point could not read (a malformed groups claim): the
/// request is refused with the reason instead of being read one way or another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedClaims(pub String);

/// How this host learns who is calling.
#[derive(Debug)]
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
                if let Some(RefusedClaims(why)) = parts.extensions.get::<RefusedClaims>() {
                    return Err(Error::Unauthenticated(why.clone()));
                }
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

/// API Gateway's JWT authorizer flattens an array claim into one string, `[a b]`; a claim sent
/// as a string arrives as it is. This reads exactly those forms (and a JSON array of strings):
/// a list with commas, quotes or empty entries is refused rather than guessed at, so that no
/// spelling of one group name can become two groups.
pub fn parse_gateway_list(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    if (raw.starts_with("[\"") || raw == "[]")
        && let Ok(list) = serde_json::from_str::<Vec<String>>(raw)
    {
        return Ok(list);
    }
    let inner = match raw.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| format!("the groups claim {raw:?} opens a list it does not close"))?,
        None => raw,
    };
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(' ')
        .map(|g| {
            if g.is_empty() || g.contains([',', '"', '[', ']']) || g.chars().any(char::is_whitespace) {
                Err(format!(
                    "the groups claim {raw:?} is not a list of group names separated by single spaces"
                ))
            } else {
                Ok(g.to_owned())
            }
        })
        .collect()
}

/// The authenticated caller, as an axum extractor, for any router state that can hand out
/// the host's [`Authenticator`].
#[derive(Debug)]
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
        let ok = |raw: &str| parse_gateway_list(raw).expect(raw);
        assert_eq!(ok("[a b]"), ["a", "b"]);
        assert_eq!(ok(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(ok("a"), ["a"]);
        assert_eq!(ok("[group:default/team-a]"), ["group:default/team-a"]);
        assert!(ok("[]").is_empty());
        assert!(ok("").is_empty());
    }

    #[test]
    fn gateway_lists_that_could_be_read_two_ways_are_refused() {
        // One group name smuggling a second one in, in every separator a lax reader splits on.
        for raw in [
            "team-a,platform-admins",
            "[team-a,platform-admins]",
            "[team-a  platform-admins]",
            "[team-a\tplatform-admins]",
            "[\"team-a\" platform-admins]",
            "[team-a",
            "[ team-a]",
        ] {
            assert!(parse_gateway_list(raw).is_err(), "{raw:?}");
        }
    }
}
