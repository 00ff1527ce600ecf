//! One provisioning task, run exactly once in effect however often its message arrives: the
//! worker's core, independent of SQS and Step Functions.
//!
//! The idempotency lock is keyed on the business `task_id`, never on the task token (a
//! redelivered message may carry a newer token). A create-pending marker is written before the
//! driver's side effect, so an operator (and `status`) can see what was attempted even when
//! the process dies mid-step; the driver's deterministic names make the retry find its own work.

/// The provisioning state machine (`infra/statemachines/provision.asl.json`), in one place for
/// both engines: the embedded interpreter runs it, the AWS bootstrap and the SAM template deploy it.
pub const PROVISION_STATE_MACHINE: &str =
    include_str!("../../../infra/statemachines/provision.asl.json");

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::idempotency::{IdempotencyStore, Lease, NextAction};
use crate::ports::{Clock, Condition, Item, Key, Table, TransactOp};
use crate::provisioning::{Driver, DriverError, ResourceSpec};

/// What a task does to its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskAction {
    Apply,
    Undo,
    /// Deprovisioning: remove the whole resource. Queued by the requests API, not by the
    /// state machine, so its message has no task token.
    Delete,
}

/// The codes the worker itself answers with (drivers have their own).
pub mod codes {
    /// The provider's circuit is open; Step Functions retries after its backoff.
    pub const CIRCUIT_OPEN: &str = "Retryable.CircuitOpen";
    /// The message kept failing in the worker itself; it goes to the DLQ.
    pub const POISON_MESSAGE: &str = "NonRetryable.PoisonMessage";
    /// The message is not a task the worker can read.
    pub const MALFORMED_TASK: &str = "NonRetryable.MalformedTask";
    /// The request was cancelled before this step ran.
    pub const CANCELLED: &str = "NonRetryable.Cancelled";
    pub const NO_DRIVER: &str = "NonRetryable.NoDriver";
}

/// The task contract: the body of every task message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    /// Step Functions' task token; answers go to it. Not part of the task's identity.
    /// Deprovisioning tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// The stable business id: `<request id>/<step>/<action>`.
    pub task_id: String,
    pub resource_type: String,
    pub step: String,
    pub action: TaskAction,
    pub spec: ResourceSpec,
}

impl TaskMessage {
    pub fn task_id_for(request_id: &str, step: &str, action: TaskAction) -> String {
        let action = match action {
            TaskAction::Apply => "apply",
            TaskAction::Undo => "undo",
            TaskAction::Delete => "delete",
        };
        format!("{request_id}/{step}/{action}")
    }

    /// The payload the idempotency record validates: everything but the token.
    fn identity(&self) -> Value {
        json!({"taskId": self.task_id, "resourceType": self.resource_type, "step": self.step,
               "action": self.action, "spec": self.spec})
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// Done now, or earlier (a duplicate delivery replays the stored outputs).
    Succeeded { outputs: Value, replayed: bool },
    /// Another delivery of the same task is running: leave the message for later.
    InProgress,
    /// The driver failed; `code` is `Retryable.*` or `NonRetryable.*`.
    Failed(DriverError),
}

const MARKER_PARTITION: &str = "TASK";

pub struct TaskRunner {
    drivers: HashMap<&'static str, Arc<dyn Driver>>,
    idempotency: IdempotencyStore,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    /// How long one attempt may hold the lock before another delivery may take over.
    attempt_timeout: Duration,
    /// The lease of each attempt running in this process, by task id: the heartbeat renews,
    /// and a crash releases, exactly the lock this attempt holds.
    leases: parking_lot::Mutex<HashMap<String, Lease>>,
}

impl std::fmt::Debug for TaskRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRunner").finish_non_exhaustive()
    }
}

impl TaskRunner {
    pub fn new(
        drivers: Vec<Arc<dyn Driver>>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        attempt_timeout: Duration,
    ) -> Self {
        let idempotency = IdempotencyStore::new(
            Arc::clone(&table),
            Arc::clone(&clock),
            "provision-worker",
            Duration::from_secs(7 * 24 * 3600),
        );
        Self {
            drivers: drivers
                .into_iter()
                .map(|d| (d.resource_type(), d))
                .collect(),
            idempotency,
            table,
            clock,
            attempt_timeout,
            leases: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The driver for a resource type, if this worker has one.
    pub fn driver(&self, resource_type: &str) -> Option<&Arc<dyn Driver>> {
        self.drivers.get(resource_type)
    }

    /// The resource types this worker can provision (the others are refused at request time).
    pub fn resource_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self.drivers.keys().copied().collect();
        types.sort_unstable();
        types
    }

    async fn mark(&self, task: &TaskMessage, status: &str, detail: Value) -> Result<(), Error> {
        self.table
            .put(self.marker_item(task, status, detail), Condition::Always)
            .await?;
        Ok(())
    }

    fn marker_op(&self, task: &TaskMessage, status: &str, detail: Value) -> TransactOp {
        TransactOp::Put {
            item: self.marker_item(task, status, detail),
            condition: Condition::Always,
        }
    }

    fn marker_item(&self, task: &TaskMessage, status: &str, detail: Value) -> Item {
        let mut attrs = Map::new();
        attrs.insert("status".into(), status.into());
        attrs.insert("step".into(), task.step.clone().into());
        attrs.insert("action".into(), json!(task.action));
        attrs.insert("at".into(), self.clock.now().to_rfc3339().into());
        attrs.insert("detail".into(), detail);
        Item::new(Key::new(MARKER_PARTITION, &task.task_id), attrs)
    }

    fn lease_of(&self, task: &TaskMessage) -> Option<Lease> {
        self.leases.lock().get(&task.task_id).cloned()
    }

    /// Renews the task's lock while its attempt is alive (the worker's heartbeat calls it).
    /// An attempt that holds no lock (not yet taken, or finished) has nothing to renew; one
    /// whose lock was taken over gets `Conflict`.
    pub async fn renew(&self, task: &TaskMessage) -> Result<(), Error> {
        let Some(lease) = self.lease_of(task) else {
            return Ok(());
        };
        self.idempotency
            .renew(
                &task.task_id,
                &lease,
                &task.identity(),
                self.attempt_timeout,
            )
            .await
    }

    /// Gives up an attempt that died (its driver panicked): frees its lock at once so the
    /// next delivery runs the step again, and marks the task FAILED with why.
    pub async fn abandon(&self, task: &TaskMessage, why: &str) -> Result<(), Error> {
        let lease = self.leases.lock().remove(&task.task_id);
        if let Some(lease) = lease {
            self.idempotency.release(&task.task_id, &lease).await?;
        }
        self.mark(task, "FAILED", json!({"code": "crashed", "message": why}))
            .await
    }

    /// The marker of a task: `PENDING` (side effect attempted), `DONE` or `FAILED`.
    pub async fn marker(&self, task_id: &str) -> Result<Option<Item>, Error> {
        Ok(self.table.get(&Key::new(MARKER_PARTITION, task_id)).await?)
    }

    pub async fn run(&self, task: &TaskMessage) -> Result<TaskOutcome, Error> {
        let Some(driver) = self.drivers.get(task.resource_type.as_str()) else {
            return Ok(TaskOutcome::Failed(DriverError::NonRetryable {
                code: codes::NO_DRIVER,
                message: format!(
                    "no driver for {} is configured on this worker",
                    task.resource_type
                ),
            }));
        };
        let identity = task.identity();
        let lease = match self
            .idempotency
            .try_acquire_with(
                &task.task_id,
                &identity,
                self.attempt_timeout,
                // The create-pending marker commits with the lock, before the side effect.
                vec![self.marker_op(task, "PENDING", Value::Null)],
            )
            .await?
        {
            NextAction::Replay(outputs) => {
                return Ok(TaskOutcome::Succeeded {
                    outputs,
                    replayed: true,
                });
            }
            NextAction::InProgress => return Ok(TaskOutcome::InProgress),
            NextAction::Execute(lease) => lease,
        };
        self.leases
            .lock()
            .insert(task.task_id.clone(), lease.clone());
        let outcome = self.execute(driver.as_ref(), task, &identity, &lease).await;
        self.leases.lock().remove(&task.task_id);
        outcome
    }

    /// Runs the step under `lease` and records its result (or frees the lock on failure).
    async fn execute(
        &self,
        driver: &dyn Driver,
        task: &TaskMessage,
        identity: &Value,
        lease: &Lease,
    ) -> Result<TaskOutcome, Error> {
        let result = match task.action {
            TaskAction::Apply => driver.apply(&task.spec, &task.step).await,
            TaskAction::Undo => driver
                .undo(&task.spec, &task.step)
                .await
                .map(|()| Value::Null),
            TaskAction::Delete => driver.delete(&task.spec).await.map(|()| Value::Null),
        };
        match result {
            Ok(outputs) => {
                self.idempotency
                    .complete_with(
                        &task.task_id,
                        lease,
                        identity,
                        &outputs,
                        vec![self.marker_op(task, "DONE", outputs.clone())],
                    )
                    .await?;
                Ok(TaskOutcome::Succeeded {
                    outputs,
                    replayed: false,
                })
            }
            Err(e) => {
                // Let the next delivery (a retry) run the step again: drivers are idempotent.
                self.idempotency.release(&task.task_id, lease).await?;
                self.mark(
                    task,
                    "FAILED",
                    json!({"code": e.code(), "message": e.to_string()}),
                )
                .await?;
                Ok(TaskOutcome::Failed(e))
            }
        }
    }
}
