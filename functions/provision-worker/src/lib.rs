//! The provisioning worker. On AWS it is an SQS-triggered Lambda (partial batch failures,
//! a DLQ after N receives); in `paved up` the same handler is driven by [`embedded::poll`].
//!
//! It reads two kinds of messages: tasks from the state machine (run the step through its
//! driver, exactly once in effect, then answer the task token) and the state machine's final
//! notifications (mark the request READY or FAILED), and the chat notifications those and
//! approvals queue (delivered to Slack once each).

pub mod chat;
pub mod embedded;
pub mod lambda;
mod notifications;
mod worker;

pub use worker::{Delivery, ProvisionWorker, WorkerConfig};

/// The provision worker as it runs on Lambda: the backend from the environment (answering
/// task tokens), the drivers its settings configure (the catalog is loaded only for the
/// service driver), `PAVED_MAX_RECEIVES`, and the Slack targets.
pub async fn worker_from_env() -> Result<ProvisionWorker, Box<dyn std::error::Error + Send + Sync>>
{
    use std::sync::Arc;

    use paved_drivers::config::DriverConfig;
    use paved_wiring::{Backend, BackendConfig, WorkflowUse};

    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::AnswersTokens).await?;
    let table = Arc::clone(&backend.table);
    let drivers_config = DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")));
    // Only the service driver reads the catalog; don't pay for loading it otherwise.
    let catalog = match drivers_config.git_root {
        Some(_) => Some(paved_wiring::load_catalog(&table).await?),
        None => None,
    };
    let drivers = drivers_config
        .build(backend.secret_store(), catalog)
        .await?;
    let config = WorkerConfig {
        max_receives: std::env::var("PAVED_MAX_RECEIVES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        reconcile: paved_core::resources::ReconcilerSettings::from_lookup(|k| {
            std::env::var(k).ok()
        })?,
        ..WorkerConfig::default()
    };
    Ok(ProvisionWorker::on_backend(
        &backend,
        drivers,
        config,
        paved_chat::notify::SlackTargets::from_env(),
    ))
}

/// The reconciliation loop's tick as it runs on Lambda: the backend's table and task queue,
/// and the `PAVED_RECONCILE*` settings. It links no driver.
pub async fn reconciler_from_env()
-> Result<paved_core::resources::Reconciler, Box<dyn std::error::Error + Send + Sync>> {
    use paved_wiring::{Backend, BackendConfig, WorkflowUse};

    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::AnswersTokens).await?;
    let settings =
        paved_core::resources::ReconcilerSettings::from_lookup(|k| std::env::var(k).ok())?;
    Ok(backend.reconciler(settings))
}
