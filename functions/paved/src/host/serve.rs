//! Serving: the listener, the start-up banner, `GET /`, and a graceful stop on a signal.

use super::{HostConfig, build};
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};

/// `GET /`: what this is and where to go next, rather than a 404.
pub(super) async fn index() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "name": "paved",
        "description": "An internal developer platform: catalog, golden paths, self-service provisioning, scorecards and DORA metrics.",
        "openapi": "/openapi.json",
        "health": "/healthz",
        "authentication": "Authorization: Bearer <token>; `paved token --user <name> --group <group>` prints one",
        "try": [
            "GET /v1/templates",
            "GET /api/catalog/entities/by-query?filter=kind=component",
            "POST /v1/requests?dryRun=true",
        ],
    }))
}

/// What a person starting `paved up` in a terminal sees first.
fn banner(addr: SocketAddr, backend: &str, data_dir: &Path) -> String {
    format!(
        "\n  paved is up at http://{addr} ({backend} backend, data in {dir})\n\n  \
         A token:      TOKEN=$(paved token --data {dir} --user alice --group team-a)\n  \
         Golden paths: curl -s http://{addr}/v1/templates -H \"Authorization: Bearer $TOKEN\"\n  \
         The API:      http://{addr}/openapi.json\n",
        dir = data_dir.display()
    )
}

/// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests and task
/// batches finish, and returns. Every write is committed before its response is sent, and
/// workflow state is durable, so nothing is lost; a restarted paved carries on.
pub async fn serve(config: HostConfig) -> Result<()> {
    let platform = build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let background = platform.start_background();
    let types = platform.requests_state.service.resource_types();
    let backend = if config.aws.is_some() {
        "aws"
    } else {
        "embedded"
    };
    tracing::info!(%addr, backend, data_dir = %config.data_dir.display(), entities = platform.catalog.read().len(), drivers = ?types, "paved is up");
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("{}", banner(addr, backend, &config.data_dir));
    }
    axum::serve(listener, platform.router.clone())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    background.stop().await;
    tracing::info!("paved stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
