//! `paved up`: every function of the platform in one process: the HTTP APIs, the provision
//! worker polling the task and notification queues, and (on the embedded backend) the
//! workflow engine's timers. The embedded backend keeps it all in one SQLite file; with
//! `PAVED_BACKEND=aws` the same process runs on DynamoDB, SQS and Step Functions (an emulator
//! after `paved aws bootstrap`, or AWS itself).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use catalog_api::{CatalogState, Limits};
use paved_aws::AwsSettings;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::DeliveryStore;
use paved_core::ports::{Queue, Table};
use paved_core::provisioning::{Driver, TableSecretStore};
use paved_core::requests::RequestRepository;
use paved_core::services::RequestsService;
use paved_drivers::config::DriverConfig;
use paved_http::Authenticator;
use paved_sqlite::Durability;
use paved_wiring::{Backend, BackendConfig, WorkflowUse};
use provision_worker::embedded::{QueueBinding, poll};
use provision_worker::{ProvisionWorker, WorkerConfig};
use requests_api::RequestsState;
use tokio::sync::watch;

/// A platform team's own guardrails.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub dir: PathBuf,
    pub replace_default: bool,
}

/// Everything `paved up` needs, resolved from flags and the environment.
#[derive(Clone)]
pub struct HostConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub admin_group: String,
    pub limits: Limits,
    pub drivers: DriverConfig,
    pub policies: Option<PolicySource>,
    /// Task pollers running at once.
    pub workers: usize,
    pub worker: WorkerConfig,
    /// How soon a task message that failed in the worker is delivered again.
    pub retry_after: Duration,
    /// How hard the SQLite file's commits wait for the disk.
    pub durability: Durability,
    /// Drivers added by an embedding program (tests use this for fault injection).
    pub extra_drivers: Vec<Arc<dyn Driver>>,
    /// Run on DynamoDB, SQS and Step Functions instead of the embedded backend.
    pub aws: Option<AwsSettings>,
    /// How often the DORA report is recomputed (at start, then on this period), as the
    /// schedule does on AWS; `None` turns it off.
    pub dora_every: Option<Duration>,
    /// Slack's signing secret for `/v1/chatops/slack` (`PAVED_SLACK_SIGNING_SECRET`); without
    /// it every Slack request is refused.
    pub slack_signing_secret: Option<chatops::slack::signature::SigningSecret>,
    /// Where Slack notifications go (`PAVED_SLACK_APPROVALS_WEBHOOK`, `PAVED_SLACK_BOT_TOKEN`).
    pub slack_targets: Option<paved_chat::notify::SlackTargets>,
    /// The scorecards (`PAVED_SCORECARDS_DIR` adds to and replaces the default).
    pub scorecards: paved_core::scorecards::ScorecardSet,
}

impl HostConfig {
    /// Defaults for a data directory: loopback, the local git root, no PostgreSQL.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            admin_group: paved_core::auth::DEFAULT_ADMIN_GROUP.into(),
            limits: Limits::default(),
            drivers: DriverConfig {
                postgres_url: None,
                git_root: Some(data_dir.join("git")),
                aws_region: None,
            },
            policies: None,
            workers: 4,
            worker: WorkerConfig::default(),
            retry_after: Duration::from_secs(2),
            durability: Durability::Full,
            extra_drivers: Vec::new(),
            aws: None,
            dora_every: Some(Duration::from_secs(24 * 3600)),
            slack_signing_secret: chatops::slack::signature::SigningSecret::from_env(),
            slack_targets: paved_chat::notify::SlackTargets::from_env(),
            scorecards: paved_core::scorecards::ScorecardSet::default(),
            data_dir,
        }
    }

    fn backend(&self) -> BackendConfig {
        match &self.aws {
            Some(settings) => BackendConfig::Aws(AwsSettings {
                // paved up's pollers long-poll; Lambda's event source mapping does it on AWS.
                receive_wait: Duration::from_secs(2),
                ..settings.clone()
            }),
            None => BackendConfig::Embedded {
                data_dir: self.data_dir.clone(),
                durability: self.durability,
            },
        }
    }
}

/// The running platform's parts, ready to serve.
pub struct Platform {
    pub router: Router,
    pub catalog: Arc<CatalogRepository>,
    pub requests: Arc<RequestRepository>,
    pub worker: Arc<ProvisionWorker>,
    pub backend: Backend,
    requests_state: RequestsState,
    /// The DORA report job (a schedule on AWS, a periodic task here).
    pub dora: Arc<dora_report::DoraJob>,
    /// Chat-ops, for the direct-invocation envelope (`chatops::invoke`).
    pub chatops: chatops::ChatopsState,
    dora_every: Option<Duration>,
    workers: usize,
    max_receives: u32,
    retry_after: Duration,
    /// Held for the life of the process: one `paved up` per data directory.
    _lock: std::fs::File,
}

/// Stops the background loops of [`Platform::start_background`] when dropped or stopped.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Asks every loop to stop after its current batch, and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
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
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    catalog_api::install_default_templates(&catalog).await?;
    let access = Arc::new(
        AccessPolicy::new(&config.admin_group)
            .map_err(|m| anyhow::anyhow!("PAVED_ADMIN_GROUP: {m}"))?,
    );
    let auth = Arc::new(Authenticator::hs256(&secret));

    let mut drivers = config
        .drivers
        .build(
            Arc::new(TableSecretStore::new(Arc::clone(&table))),
            Some(Arc::clone(&catalog)),
        )
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
    let dora = Arc::new(dora_report::DoraJob::new(
        Arc::clone(&table),
        dora_report::DoraJobConfig::from_env()?,
    ));
    let router = Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .merge(catalog_api::router(catalog_state))
        .merge(requests_api::router(requests_state.clone()))
        .merge(metrics_api::router(metrics_state))
        .merge(events_ingest::router(ingest_state))
        .merge(chatops::router(chatops_state.clone()))
        .merge(catalog_api::scorecards::router(scorecards_state))
        .fallback(paved_http::route_not_found)
        .layer(axum::middleware::from_fn(paved_http::request_context));
    Ok(Platform {
        router,
        catalog,
        requests,
        worker,
        backend,
        requests_state,
        dora,
        chatops: chatops_state,
        dora_every: config.dora_every,
        workers: config.workers.max(1),
        max_receives: config.worker.max_receives,
        retry_after: config.retry_after,
        _lock: lock,
    })
}

impl Platform {
    /// Starts what Lambda's event source mappings and Step Functions do on AWS: the task and
    /// notification pollers, the engine's timers (embedded only), and a sweeper that starts
    /// the execution of any request left QUEUED by a crash.
    pub fn start_background(&self) -> Background {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let queue: Arc<dyn Queue> = Arc::clone(&self.backend.queue);
        let names = &self.backend.queues;
        // SQS long-polls inside the receive; the embedded queue wakes on a send.
        let idle_poll = if self.backend.embedded.is_some() {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        for _ in 0..self.workers {
            tasks.push(tokio::spawn(poll(
                Arc::clone(&queue),
                Arc::clone(&self.worker),
                QueueBinding {
                    retry_after: self.retry_after,
                    idle_poll,
                    ..QueueBinding::new(&names.tasks, &names.task_dead_letters, self.max_receives)
                },
                stopped(rx.clone()),
            )));
        }
        tasks.push(tokio::spawn(poll(
            Arc::clone(&queue),
            Arc::clone(&self.worker),
            QueueBinding {
                idle_poll,
                ..QueueBinding::new(
                    &names.notifications,
                    &names.notification_dead_letters,
                    self.max_receives,
                )
            },
            stopped(rx.clone()),
        )));
        if let Some(embedded) = &self.backend.embedded {
            let engine = embedded.engine.clone();
            let until = stopped(rx.clone());
            tasks.push(tokio::spawn(async move { engine.run_timers(until).await }));
        }
        if let Some(every) = self.dora_every {
            let job = Arc::clone(&self.dora);
            let mut until = Box::pin(stopped(rx.clone()));
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = job.run(chrono::Utc::now()).await {
                        tracing::error!(error = %e, "the DORA report failed");
                    }
                    tokio::select! {
                        () = &mut until => return,
                        () = tokio::time::sleep(every) => {},
                    }
                }
            }));
        }
        let service = Arc::clone(&self.requests_state.service);
        let mut until = Box::pin(stopped(rx));
        tasks.push(tokio::spawn(async move {
            loop {
                match service.resume_queued().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(requests = n, "started the executions of queued requests")
                    }
                    Err(e) => tracing::error!(error = %e, "resuming queued requests failed"),
                }
                tokio::select! {
                    () = &mut until => return,
                    () = tokio::time::sleep(Duration::from_secs(60)) => {},
                }
            }
        }));
        Background { stop, tasks }
    }
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

/// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests and task
/// batches finish, and returns. Every write is committed before its response is sent, and
/// workflow state is durable, so nothing is lost; a restarted paved carries on.
/// `GET /`: what this is and where to go next, rather than a 404.
async fn index() -> axum::Json<serde_json::Value> {
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
