//! The use-case services on a backend's ports.

use std::collections::HashMap;
use std::sync::Arc;

use paved_core::auth::{AccessPolicy, DEFAULT_ADMIN_GROUP};
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::DeliveryStore;
use paved_core::policy::PolicyEngine;
use paved_core::ports::SystemClock;
use paved_core::services::{Reports, RequestsPorts, RequestsService};

use crate::Backend;

impl Backend {
    /// The ports the request use cases run on: this backend's table, workflow engine, and
    /// task and notification queues.
    pub fn requests_ports(&self) -> RequestsPorts {
        RequestsPorts {
            table: Arc::clone(&self.table),
            clock: Arc::new(SystemClock),
            workflow: Arc::clone(&self.workflow),
            queue: Arc::clone(&self.queue),
            task_queue: self.queues.tasks.clone(),
            notification_queue: self.queues.notifications.clone(),
        }
    }

    /// The stored DORA report and adoption figures.
    pub fn reports(&self) -> Reports {
        Reports::new(Arc::new(DeliveryStore::new(Arc::clone(&self.table))))
    }
}

/// The request use cases as a Lambda function runs them: the drivers configured in the
/// environment (`PAVED_*` driver settings) plan requests, `PAVED_ADMIN_GROUP` (default
/// `platform-admins`) are the admins, and `guardrails` decide. The requests, sweeper and
/// chat-ops functions share it.
pub fn requests_service_from_env(
    backend: &Backend,
    catalog: Arc<CatalogRepository>,
    guardrails: PolicyEngine,
) -> Result<RequestsService, String> {
    let drivers =
        paved_drivers::config::DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")));
    let planners = drivers.planners()?;
    let unavailable = drivers
        .availability()
        .into_iter()
        .filter_map(|(t, a)| a.err().map(|why| (t.to_owned(), why)))
        .collect::<HashMap<_, _>>();
    let admins = std::env::var("PAVED_ADMIN_GROUP").unwrap_or_else(|_| DEFAULT_ADMIN_GROUP.into());
    Ok(RequestsService::new(
        backend.requests_ports(),
        catalog,
        guardrails,
        Arc::new(AccessPolicy::new(&admins)?),
        &planners,
        unavailable,
    ))
}
