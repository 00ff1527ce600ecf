//! `paved up`: every HTTP function of the platform in one process, on one SQLite file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use catalog_api::{CatalogState, Limits};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_embedded::SqliteStore;
use paved_http::Authenticator;

/// Everything `paved up` needs, resolved from flags and the environment.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub admin_group: String,
    pub limits: Limits,
}

/// The running platform's state, ready to serve.
pub struct Platform {
    pub router: Router,
    pub catalog: Arc<CatalogRepository>,
    /// Held for the life of the process: one `paved up` per data directory.
    _lock: std::fs::File,
}

/// Opens the data directory (creating it on first run), loads the catalog and builds the
/// router of every function.
pub async fn build(config: &HostConfig) -> Result<Platform> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let lock = lock_data_dir(&config.data_dir)?;
    let secret = crate::secret::load_or_create(&config.data_dir, config.jwt_secret.clone())?;
    let store = SqliteStore::open(&config.data_dir.join("paved.db"))
        .context("opening the embedded store")?;
    let catalog = Arc::new(CatalogRepository::load(Arc::new(store)).await?);
    catalog_api::install_default_templates(&catalog).await?;
    let policy = AccessPolicy::new(&config.admin_group)
        .map_err(|m| anyhow::anyhow!("PAVED_ADMIN_GROUP: {m}"))?;
    let state = CatalogState {
        repo: Arc::clone(&catalog),
        policy: Arc::new(policy),
        limits: config.limits,
        auth: Arc::new(Authenticator::hs256(&secret)),
    };
    let router = Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .merge(catalog_api::router(state))
        .fallback(paved_http::route_not_found)
        .layer(axum::middleware::from_fn(paved_http::request_context));
    Ok(Platform {
        router,
        catalog,
        _lock: lock,
    })
}

fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!(
                "another paved is already running on {}; stop it or use --data",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests finish, and
/// returns. Every write is committed before its response is sent, so nothing is lost.
pub async fn serve(config: HostConfig) -> Result<()> {
    let platform = build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), entities = platform.catalog.read().len(), "paved is up");
    axum::serve(listener, platform.router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
