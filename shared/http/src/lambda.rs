//! What every API function's Lambda entry point adds in front of its router.

use crate::{GatewayClaims, RefusedClaims, parse_gateway_list};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Copies the claims API Gateway's JWT authorizer verified into the request, where the
/// handlers' `Caller` extractor finds them. Nothing else is trusted for identity on Lambda.
pub fn copy_authorizer_claims(mut request: Request) -> Request {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| {
                let groups = jwt
                    .claims
                    .get("groups")
                    .map_or_else(|| Ok(Vec::new()), |g| parse_gateway_list(g));
                groups.map(|groups| GatewayClaims {
                    sub: jwt.claims.get("sub").cloned().unwrap_or_default(),
                    groups,
                })
            }),
        _ => None,
    };
    match claims {
        Some(Ok(claims)) => {
            request.extensions_mut().insert(claims);
        }
        Some(Err(why)) => {
            request.extensions_mut().insert(RefusedClaims(why));
        }
        None => {}
    }
    request
}

/// Serves `routes` on Lambda behind API Gateway: inside the shared [`edge`](crate::edge), with
/// the claims API Gateway's authorizer verified copied in (routes without an authorizer, such
/// as the signed webhooks and Slack's posts, carry none, and their handlers verify signatures).
pub async fn run(routes: axum::Router) -> Result<(), lambda_http::Error> {
    let app = tower::ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(crate::edge(routes));
    lambda_http::run(app).await
}

/// JSON logs without timestamps (CloudWatch adds them), filtered by `RUST_LOG`: the same
/// set-up for every function.
///
/// `RUST_LOG` takes `target=level` directives and a bare default level (`info`,
/// `paved_core=debug,warn`), read by `tracing_subscriber`'s `Targets`. Its `EnvFilter` also
/// matches spans and field values with regular expressions, and linked a DFA compiler into
/// every function for that (docs/decisions.md → "Lambda bootstraps"); a value it cannot read
/// falls back to `info` and says so in the log.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, refused) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().without_time())
        .with(filter)
        .init();
    if let Some(why) = refused {
        tracing::warn!(%why, "RUST_LOG takes `target=level` directives; logging at info");
    }
}

/// The filter `RUST_LOG` asks for (`info` when unset), or `info` and why the value was refused.
fn log_filter(value: Option<&str>) -> (Targets, Option<String>) {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => (default(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (default(), Some(format!("{v:?}: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_directives_set_levels_per_target() {
        let (filter, refused) = log_filter(Some("paved_core=debug,warn"));
        assert!(refused.is_none());
        assert!(filter.would_enable("paved_core::catalog", &Level::DEBUG));
        assert!(!filter.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(filter.would_enable("aws_smithy_runtime", &Level::WARN));
    }

    #[test]
    fn unset_means_info_and_unreadable_values_say_why() {
        let (filter, refused) = log_filter(None);
        assert!(refused.is_none());
        assert!(filter.would_enable("anything", &Level::INFO));
        assert!(!filter.would_enable("anything", &Level::DEBUG));
        let (filter, refused) = log_filter(Some("[span{field=value}]=debug"));
        assert!(refused.expect("refused").contains("span"));
        assert!(filter.would_enable("anything", &Level::INFO));
    }
}
