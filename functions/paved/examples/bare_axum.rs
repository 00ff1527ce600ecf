//! The benchmark's reference ceiling: a bare axum server on the same runtime and allocator
//! as `paved up`, answering every request with one static entity. `scripts/bench-catalog.sh`
//! measures it in the same run, so paved's figures can be read as a fraction of it.
//!
//!     cargo run --release -p paved --example bare_axum -- 127.0.0.1:18089

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTITY: &str = r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"annotations":{"github.com/project-slug":"acme/svc-00042"},"description":"Handles billing for team-0042 (rust)","etag":"0b5c7b1f0e8d4b4f9c1f3f1e2d3c4b5a","generation":1,"name":"svc-00042","namespace":"default","tags":["rust","billing"],"title":"Billing service 42","uid":"7d3f5a2e-8c1b-4e6f-9a0d-1b2c3d4e5f60"},"spec":{"dependsOn":["component:svc-00007","component:svc-00031"],"lifecycle":"production","owner":"team-0042","type":"service"},"relations":[{"type":"dependsOn","targetRef":"component:default/svc-00007"},{"type":"dependsOn","targetRef":"component:default/svc-00031"},{"type":"ownedBy","targetRef":"group:default/team-0042"}]}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18089".into());
    let app = Router::new().fallback(get(|| async {
        ([(header::CONTENT_TYPE, "application/json")], ENTITY)
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
