//! What every API function's Lambda entry point adds in front of its router.

use crate::{GatewayClaims, parse_gateway_list};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Copies the claims API Gateway's JWT authorizer verified into the request, where the
/// handlers' `Caller` extractor finds them. Nothing else is trusted for identity on Lambda.
pub fn copy_authorizer_claims(mut request: Request) -> Request {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| GatewayClaims {
                sub: jwt.claims.get("sub").cloned().unwrap_or_default(),
                groups: jwt
                    .claims
                    .get("groups")
                    .map(|g| parse_gateway_list(g))
                    .unwrap_or_default(),
            }),
        _ => None,
    };
    if let Some(claims) = claims {
        request.extensions_mut().insert(claims);
    }
    request
}

/// JSON logs without timestamps (CloudWatch adds them), filtered by `RUST_LOG`: the same
/// set-up for every function.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
}
