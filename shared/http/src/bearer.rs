//! Bearer tokens, as `paved up` verifies and mints them: HS256 JWTs signed with the host's
//! secret. The Lambda functions leave this out (paved-http's `bearer-tokens` feature): API
//! Gateway's JWT authorizer has verified the token before they see the request.

use paved_core::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use paved_core::Error;
use paved_core::auth::Identity;
use serde::{Deserialize, Serialize};

use crate::Authenticator;

/// The claims paved reads from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub sub: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Expiry, in seconds since the epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Verifies HS256 tokens, remembering the ones that verified until they expire, so that a
/// client's repeated requests pay for the signature check once (as API Gateway caches its
/// authorizer's answers).
#[derive(Debug)]
pub struct Hs256Verifier {
    key: DecodingKey,
    validation: Validation,
    verified: RwLock<HashMap<Box<str>, VerifiedToken>>,
}

/// Who a verified token names, and when it expires (seconds since the epoch).
type VerifiedToken = (Arc<Identity>, u64);

/// How many verified tokens are remembered before the memory is cleared.
const VERIFIED_TOKENS: usize = 10_000;
const LEEWAY_SECS: u64 = 30;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Hs256Verifier {
    /// The identity in a request's `Authorization: Bearer <jwt>` header.
    pub(crate) fn authenticate(&self, parts: &Parts) -> Result<Arc<Identity>, Error> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            Error::Unauthenticated(
                "send a bearer token: Authorization: Bearer <token> (paved token prints one)"
                    .into(),
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Error::Unauthenticated("the Authorization header must be 'Bearer <token>'".into())
            })?;
        self.verify(token)
    }

    fn verify(&self, token: &str) -> Result<Arc<Identity>, Error> {
        if let Some((who, _)) = self
            .verified
            .read()
            .get(token)
            .filter(|(_, exp)| now_secs() <= exp.saturating_add(LEEWAY_SECS))
        {
            return Ok(Arc::clone(who));
        }
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks a required claim (sub, exp)"
                    }
                    _ => "the token is malformed",
                };
                Error::Unauthenticated(why.into())
            })?;
        let who = Arc::new(Identity::from_claims(
            &data.claims.sub,
            &data.claims.groups,
        )?);
        let mut verified = self.verified.write();
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.into(), (Arc::clone(&who), data.claims.exp));
        Ok(who)
    }
}

impl Authenticator {
    /// Verifies bearer tokens signed with `secret` (HS256), as `paved up` does.
    pub fn hs256(secret: &[u8]) -> Self {
        crate::hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self::Hs256(Box::new(Hs256Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
            verified: RwLock::new(HashMap::new()),
        }))
    }
}

/// Signs a token for `sub` and `groups`, valid for `ttl_secs`.
pub fn mint_token(
    secret: &[u8],
    sub: &str,
    groups: &[String],
    ttl_secs: u64,
) -> Result<String, Error> {
    Identity::from_claims(sub, groups)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = TokenClaims {
        sub: sub.to_owned(),
        groups: groups.to_vec(),
        exp: now.saturating_add(ttl_secs),
        iat: Some(now),
    };
    crate::hs256::install();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| Error::bad_request(ErrorCode::TokenError, e.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;
    use crate::{GatewayClaims, parse_gateway_list};

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn tokens_round_trip() {
        let token = mint_token(b"secret", "alice", &["team-a".into()], 60).expect("mint");
        let who = Authenticator::hs256(b"secret")
            .authenticate(&parts(Some(&format!("Bearer {token}"))))
            .expect("valid");
        assert_eq!(who.user().to_string(), "user:default/alice");
        assert_eq!(who.groups()[0].to_string(), "group:default/team-a");
    }

    #[test]
    fn bad_tokens_are_unauthenticated() {
        let auth = Authenticator::hs256(b"secret");
        let other = mint_token(b"other", "alice", &[], 60).expect("mint");
        for header in [
            None,
            Some("Basic abc".to_owned()),
            Some("Bearer nope".into()),
            Some(format!("Bearer {other}")),
        ] {
            let err = auth
                .authenticate(&parts(header.as_deref()))
                .expect_err("refused");
            assert_eq!(err.code(), "unauthenticated", "{header:?}");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &TokenClaims {
                sub: "a".into(),
                groups: vec![],
                exp: now - 3600,
                iat: None,
            },
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode");
        let err = auth
            .authenticate(&parts(Some(&format!("Bearer {expired}"))))
            .expect_err("expired");
        assert!(err.to_string().contains("expired"));
    }

    /// A token signed with the right secret whose header names another algorithm: the
    /// HS256-only provider must not be talked into it.
    fn token_with_alg(alg: &str, secret: &[u8]) -> String {
        use base64::Engine;
        use hmac::Mac;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs()
            + 60;
        let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let claims = b64.encode(format!(r#"{{"sub":"alice","groups":[],"exp":{exp}}}"#));
        let signed = format!("{header}.{claims}");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn only_hs256_is_accepted() {
        let auth = Authenticator::hs256(b"secret");
        let genuine = token_with_alg("HS256", b"secret");
        auth.authenticate(&parts(Some(&format!("Bearer {genuine}"))))
            .expect("HS256 with the secret");
        for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA", "none"] {
            let token = token_with_alg(alg, b"secret");
            let err = auth
                .authenticate(&parts(Some(&format!("Bearer {token}"))))
                .expect_err(alg);
            assert_eq!(err.code(), "unauthenticated", "{alg}");
        }
    }

    #[test]
    fn gateway_mode_trusts_only_the_authorizer_context() {
        let token = mint_token(b"secret", "alice", &[], 60).expect("mint");
        let mut p = parts(Some(&format!("Bearer {token}")));
        assert!(
            Authenticator::Gateway.authenticate(&p).is_err(),
            "a header is not enough"
        );
        p.extensions.insert(GatewayClaims {
            sub: "bob".into(),
            groups: parse_gateway_list("[team-a team-b]").expect("a list"),
        });
        let who = Authenticator::Gateway.authenticate(&p).expect("claims");
        assert_eq!(who.groups().len(), 2);
        // Claims the entry point could not read refuse the request, with the reason.
        p.extensions
            .insert(crate::RefusedClaims("bad groups".into()));
        let err = Authenticator::Gateway
            .authenticate(&p)
            .expect_err("refused");
        assert_eq!(err.code(), "unauthenticated");
        // A subject naming a group is not that group's member: it is refused.
        let mut p = parts(None);
        p.extensions.insert(GatewayClaims {
            sub: "group:default/platform-admins".into(),
            groups: Vec::new(),
        });
        assert!(Authenticator::Gateway.authenticate(&p).is_err());
    }

    #[test]
    fn a_token_that_never_expires_does_not_overflow_the_cache_check() {
        let token = mint_token(b"secret", "alice", &[], u64::MAX).expect("mint");
        let auth = Authenticator::hs256(b"secret");
        let header = format!("Bearer {token}");
        // Twice: the second answer comes from the verified-token cache and its expiry check.
        for _ in 0..2 {
            let who = auth.authenticate(&parts(Some(&header))).expect("valid");
            assert_eq!(who.user().to_string(), "user:default/alice");
        }
    }
}
