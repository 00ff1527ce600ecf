//! The catalog function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::sync::Arc;

use catalog_api::config::{Backend, CatalogConfig};
use catalog_api::{CatalogState, router};
use lambda_http::request::RequestContext;
use lambda_http::{Error, Request, RequestExt};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::ports::Table;
use paved_http::{Authenticator, GatewayClaims, parse_gateway_list};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let config = CatalogConfig::from_env()?;
    let table: Arc<dyn Table> = match &config.backend {
        Backend::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)?;
            Arc::new(paved_embedded::SqliteStore::open(&data_dir.join("paved.db"))?)
        }
        Backend::Aws => return Err("PAVED_BACKEND=aws needs the DynamoDB adapter (shared/aws), which this build does not include yet".into()),
    };
    let state = CatalogState {
        repo: Arc::new(CatalogRepository::load(table).await?),
        policy: Arc::new(AccessPolicy::new(&config.admin_group)?),
        limits: config.limits,
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state, Arc::new(Authenticator::Gateway)));
    lambda_http::run(app).await
}

/// Copies the claims API Gateway's JWT authorizer verified into the request, where the
/// handlers' `Caller` extractor finds them.
fn copy_authorizer_claims(mut request: Request) -> Request {
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
