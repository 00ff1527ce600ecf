//! Building the platform: the data directory and its lock, the backend, the catalog, the
//! services, every function's router and the provision worker.

use super::HostConfig;
use super::serve::index;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use catalog_api::CatalogState;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::DeliveryStore;
use paved_core::ports::Table;
use paved_core::requests::RequestRepository;
use paved_core::services::RequestsService;
use paved_http::Authenticator;
use paved_wiring::{Backend, WorkflowUse};
use provision_worker::ProvisionWorker;
use requests_api::RequestsState;

/// The running platform's parts, ready to serve.
#[derive(Debug)]
pub struct Platform {
    pub router: Router,
    pub catalog: Arc<CatalogRepository>,
    pub requests: Arc<RequestRepository>,
    pub worker: Arc<ProvisionWorker>,
    pub backend: Backend,
    pub(super) requests_state: RequestsState,
    /// The DORA report job (a schedule on AWS, a periodic task here).
    #[cfg(feature = "analytics")]
    pub dora: Arc<paved_analytics::job::DoraJob>,
    /// Chat-ops, for the direct-invocation envelope (`chatops::invoke`).
    pub chatops: chatops::ChatopsState,
    pub(super) dora_every: Option<Duration>,
    pub(super) workers: usize,
    pub(super) max_receives: u32,
    pub(super) retry_after: Duration,
    /// Held for the life of the process: one `paved up` per data directory.
    _lock: std::fs::File,
}

/// Opens the data directory (creating it on first run), loads the catalog and builds every
/// function: the routers, the provision worker and the workflow engine.
pub async fn build(config: &HostConfig) -> Result<Platform> {
    paved_sqlite::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let lock = lock_data_dir(&config.data_dir).await?;
    let secret = crate::secret::load_or_create(&config.data_dir, config.jwt_secret.clone())?;
    let backend = Backend::open(&config.backend(), WorkflowUse::StartsExecutions)
        .await
        .map_err(anyhow::Error::msg)?;
    let table: Arc<dyn Table> = Arc::clone(&backend.table);
    let catalog = paved_wiring::load_catalog(&table)
        .await
        .map_err(anyhow::Error::msg)?;
    catalog_api::install_default_templates(&catalog).await?;
    let access = Arc::new(
        AccessPolicy::new(&config.admin_group)
            .map_err(|m| anyhow::anyhow!("PAVED_ADMIN_GROUP: {m}"))?,
    );
    let auth = Arc::new(Authenticator::hs256(&secret));

    let mut drivers = config
        .drivers
        .build(backend.secret_store(), Some(Arc::clone(&catalog)))
        .await
        .map_err(|m| anyhow::anyhow!(m))?;
    drivers.extend(config.extra_drivers.iter().cloned());
    let unavailable: HashMap<String, String> = config
        .drivers
        .availability()
        .into_iter()
        .filter_map(|(t, a)| a.err().map(|why| (t.to_owned(), why)))
        .collect();
    let worker = Arc::new(ProvisionWorker::on_backend(
        &backend,
        drivers.clone(),
        config.worker.clone(),
        config.slack_targets.clone(),
    ));
    // Before the background tick's first run, so it scans this process's providers for leaks.
    worker.register_providers().await;
    let requests_service = Arc::new(RequestsService::new(
        backend.requests_ports(),
        Arc::clone(&catalog),
        paved_wiring::guardrails::load(
            config
                .policies
                .as_ref()
                .map(|p| (p.dir.as_path(), p.replace_default)),
        )?,
        Arc::clone(&access),
        &paved_core::provisioning::planners_of(&drivers),
        unavailable,
    ));
    let requests_state = RequestsState {
        service: Arc::clone(&requests_service),
        auth: Arc::clone(&auth),
    };
    let requests = Arc::clone(requests_service.repository());
    let catalog_state = CatalogState {
        repo: Arc::clone(&catalog),
        policy: access,
        limits: config.limits,
        auth,
    };
    let ingest_state = events_ingest::IngestState {
        events: Arc::new(DeliveryStore::new(Arc::clone(&table))),
        catalog: Arc::clone(&catalog),
        secrets: events_ingest::signatures::WebhookSecrets::from_env(),
        auth: Arc::clone(&catalog_state.auth),
        clock: Arc::new(paved_core::ports::SystemClock),
    };
    let metrics_state = metrics_api::MetricsState {
        reports: backend.reports(),
        auth: Arc::clone(&catalog_state.auth),
    };
    let scorecards_state = catalog_api::scorecards::ScorecardsState {
        catalog: Arc::clone(&catalog),
        events: Arc::new(DeliveryStore::new(Arc::clone(&table))),
        cards: Arc::new(config.scorecards.clone()),
        auth: Arc::clone(&catalog_state.auth),
    };
    // Chat-ops calls the same services, as the Slack user it verified.
    let chatops_state = chatops::ChatopsState {
        catalog: Arc::clone(&catalog),
        requests: Arc::clone(&requests_service),
        reports: backend.reports(),
        signing_secret: config.slack_signing_secret.clone(),
        clock: Arc::new(paved_core::ports::SystemClock),
        origins: Arc::new(paved_chat::origins::ChatOrigins::new(Arc::clone(&table))),
        scorecards: Arc::clone(&scorecards_state.cards),
        events: Arc::clone(&scorecards_state.events),
        slack: chatops::slack_poster(config.slack_targets.clone()),
        seen_events: Arc::new(chatops::slack_event_log(Arc::clone(&table))),
    };
    #[cfg(feature = "analytics")]
    let dora = Arc::new(paved_analytics::job::DoraJob::new(
        Arc::clone(&table),
        paved_analytics::job::DoraJobConfig::from_env()?,
    ));
    let router = Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .merge(catalog_api::router(catalog_state))
        .merge(requests_api::router(requests_state.clone()))
        .merge(metrics_api::router(metrics_state))
        .merge(events_ingest::router(ingest_state))
        .merge(chatops::router(chatops_state.clone()))
        .merge(catalog_api::scorecards::router(scorecards_state));
    let router = paved_http::edge(router);
    Ok(Platform {
        router,
        catalog,
        requests,
        worker,
        backend,
        requests_state,
        #[cfg(feature = "analytics")]
        dora,
        chatops: chatops_state,
        dora_every: config.dora_every,
        workers: config.workers.max(1),
        max_receives: config.worker.max_receives,
        retry_after: config.retry_after,
        _lock: lock,
    })
}

/// How long a start waits for the lock of a paved that is still shutting down (or for a
/// process forked by it, which holds the open file until it execs) before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(3);

async fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                anyhow::bail!(
                    "another paved is already running on {}; stop it or use --data",
                    dir.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
}
