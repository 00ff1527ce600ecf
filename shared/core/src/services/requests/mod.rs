//! The self-service request lifecycle: submit (or dry-run) a request from a golden path,
//! decide on it, cancel it, deprovision what it made, and restart what was left QUEUED. The
//! rules live here, so the requests API, chat-ops and the sweeper cannot drift apart.

mod cursor;
mod decide;
mod read;
mod resources;
mod submit;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::AccessPolicy;
use crate::catalog::CatalogRepository;
use crate::idempotency::IdempotencyStore;
use crate::policy::PolicyEngine;
use crate::ports::{Clock, Queue, Table, Workflow};
use crate::provisioning::Planner;
use crate::requests::RequestRepository;

pub use read::{RequestListing, RequestPage};
pub use resources::{ResourceListing, ResourcePatch};
pub use submit::{DryRun, RequestForm, Submission};
pub use view::request_view;

/// The approver group when the guardrails name none.
pub const DEFAULT_APPROVER_GROUP: &str = "group:default/platform-approvers";

/// How long a submitted `Idempotency-Key` replays its request.
const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The ports the request use cases run on (one backend's).
#[derive(Clone)]
pub struct RequestsPorts {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Starts a request's provisioning execution (Step Functions or the embedded engine).
    pub workflow: Arc<dyn Workflow>,
    /// The queue port deprovisioning tasks and chat notifications are sent on.
    pub queue: Arc<dyn Queue>,
    /// The worker's task queue.
    pub task_queue: String,
    /// The notifications queue (a request waits for an approval).
    pub notification_queue: String,
}

impl std::fmt::Debug for RequestsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestsPorts").finish_non_exhaustive()
    }
}

/// The request use cases over one backend's ports; cheap to share behind an `Arc`.
pub struct RequestsService {
    requests: Arc<RequestRepository>,
    catalog: Arc<CatalogRepository>,
    guardrails: Arc<PolicyEngine>,
    access: Arc<AccessPolicy>,
    workflow: Arc<dyn Workflow>,
    idempotency: IdempotencyStore,
    queue: Arc<dyn Queue>,
    task_queue: String,
    notification_queue: String,
    /// The configured drivers' planners by resource type: they check a request and answer
    /// dry runs; the worker's drivers do the work.
    planners: HashMap<String, Arc<dyn Planner>>,
    /// Why each known but unconfigured resource type is unavailable.
    unavailable: HashMap<String, String>,
    /// Members of this group may approve and see every request.
    approver_group: String,
    /// The live resources' states, and observations asked for by people.
    reconciler: crate::resources::Reconciler,
}

impl std::fmt::Debug for RequestsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestsService")
            .field("task_queue", &self.task_queue)
            .field("planners", &self.planners.keys().collect::<Vec<_>>())
            .field("approver_group", &self.approver_group)
            .finish_non_exhaustive()
    }
}

impl RequestsService {
    /// The service over `ports`, reading owners and templates from `catalog`. `planners` are
    /// the configured drivers'; `unavailable` says why each other known type is off.
    pub fn new(
        ports: RequestsPorts,
        catalog: Arc<CatalogRepository>,
        guardrails: PolicyEngine,
        access: Arc<AccessPolicy>,
        planners: &[Arc<dyn Planner>],
        unavailable: HashMap<String, String>,
    ) -> Self {
        let reconciler = crate::resources::Reconciler::new(
            Arc::clone(&ports.table),
            Arc::clone(&ports.queue),
            ports.task_queue.clone(),
            ports.notification_queue.clone(),
            Arc::clone(&ports.clock),
            crate::resources::ReconcilerSettings::default(),
        );
        Self {
            reconciler,
            requests: Arc::new(RequestRepository::new(
                Arc::clone(&ports.table),
                Arc::clone(&ports.clock),
            )),
            catalog,
            approver_group: guardrails
                .approver_group()
                .unwrap_or_else(|| DEFAULT_APPROVER_GROUP.into()),
            guardrails: Arc::new(guardrails),
            access,
            workflow: ports.workflow,
            idempotency: IdempotencyStore::new(
                ports.table,
                ports.clock,
                "requests-api",
                IDEMPOTENCY_TTL,
            ),
            queue: ports.queue,
            task_queue: ports.task_queue,
            notification_queue: ports.notification_queue,
            planners: planners
                .iter()
                .map(|p| (p.resource_type().to_owned(), Arc::clone(p)))
                .collect(),
            unavailable,
        }
    }

    /// The repository the requests are kept in (the worker and the tests read it too).
    pub fn repository(&self) -> &Arc<RequestRepository> {
        &self.requests
    }

    /// The catalog the service reads owners and templates from.
    pub fn catalog(&self) -> &Arc<CatalogRepository> {
        &self.catalog
    }

    pub fn access(&self) -> &Arc<AccessPolicy> {
        &self.access
    }

    /// The resource types a driver is configured for, sorted.
    pub fn resource_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.planners.keys().map(String::as_str).collect();
        types.sort_unstable();
        types
    }
}
