//! The embedded workflow engine: runs the provisioning state machine
//! (`infra/statemachines/provision.asl.json`) on the SQLite file, as Step Functions runs it on
//! AWS. It implements the subset of ASL that file uses plus Map, Choice and Wait, and refuses
//! anything else when the definition loads.
//!
//! Durability: executions live in the `wf_executions` table. Each event (start, callback,
//! timer) is one transaction that also holds the SQS messages the states sent, so after a
//! crash an execution resumes exactly where its last committed state left it: task messages
//! are already in the (durable) queue, and timers fire when `run_timers` starts again.

mod choice;
mod data_flow;
mod definition;
mod execution;
mod interpreter;
mod paths;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::ports::{ExecutionStatus, Workflow, WorkflowError};
use rusqlite::TransactionBehavior;
use serde_json::Value;
use tokio::sync::Notify;

pub use definition::Machine;
use execution::{Execution, Position};
use interpreter::Engine;

use paved_sqlite::{SqliteStore, store_error};

/// The embedded queues the provisioning state machine and its worker use.
pub const TASK_QUEUE: &str = "paved-tasks";
pub const TASK_DEAD_LETTER_QUEUE: &str = "paved-tasks-dlq";
pub const NOTIFICATION_QUEUE: &str = "paved-notifications";
pub const NOTIFICATION_DEAD_LETTER_QUEUE: &str = "paved-notifications-dlq";

/// The embedded Step Functions: one state machine definition over one SQLite store.
#[derive(Clone)]
pub struct WorkflowEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkflowEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowEngine").finish_non_exhaustive()
    }
}

struct Inner {
    store: SqliteStore,
    machine: Machine,
    machine_arn: String,
    /// Wakes the timer loop when an earlier timer may exist.
    timers_changed: Notify,
}

impl WorkflowEngine {
    /// Loads `definition` (ASL JSON) with `${Name}` placeholders replaced from
    /// `substitutions`. Queue URLs in the definition name queues of the embedded queue.
    pub fn new(
        store: SqliteStore,
        name: &str,
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<Self, WorkflowError> {
        let machine = Machine::load(definition, substitutions)
            .map_err(|e| WorkflowError::Definition(format!("state machine {name}: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                machine,
                machine_arn: format!("arn:aws:states:local:000000000000:stateMachine:{name}"),
                timers_changed: Notify::new(),
            }),
        })
    }

    /// The provisioning state machine on the embedded queues.
    pub fn provisioning(store: SqliteStore) -> Result<Self, WorkflowError> {
        Self::new(
            store,
            "provision",
            paved_core::tasks::PROVISION_STATE_MACHINE,
            &HashMap::from([
                ("TaskQueueUrl".to_owned(), TASK_QUEUE.to_owned()),
                (
                    "NotificationQueueUrl".to_owned(),
                    NOTIFICATION_QUEUE.to_owned(),
                ),
            ]),
        )
    }

    /// Runs `work` in one immediate transaction with an interpreter over it.
    async fn with_engine<T, F>(&self, work: F) -> Result<T, WorkflowError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine<'_>) -> Result<T, WorkflowError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = self
            .inner
            .store
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(store_error)?;
                let out = {
                    let mut engine = Engine::new(&inner.machine, &inner.machine_arn, &tx);
                    work(&mut engine)
                };
                match out {
                    Ok(v) => {
                        tx.commit().map_err(store_error)?;
                        Ok(Ok(v))
                    }
                    // Dropping the transaction rolls it back.
                    Err(e) => Ok(Err(e)),
                }
            })
            .await?;
        self.inner.timers_changed.notify_one();
        // The transaction may have sent task or notification messages.
        self.inner.store.messages_sent();
        result
    }

    /// Fires due timers until `shutdown` resolves. `paved up` runs one of these.
    pub async fn run_timers(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = paved_sqlite::now_millis();
            let next = self
                .with_engine(move |e| {
                    e.fire_timers(now)?;
                    e.next_timer()
                })
                .await;
            let wait = match next {
                Ok(Some(at)) => Duration::from_millis(
                    u64::try_from(at - paved_sqlite::now_millis()).unwrap_or(0),
                ),
                Ok(None) => Duration::from_secs(5),
                Err(e) => {
                    tracing::error!(error = %e, "the workflow timers failed; retrying");
                    Duration::from_secs(1)
                }
            }
            .min(Duration::from_secs(5));
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {},
                () = self.inner.timers_changed.notified() => {},
            }
        }
    }

    /// Fires the timers due at `now_ms` (epoch milliseconds) once: lets tests move time
    /// forward instead of sleeping through backoffs and timeouts.
    pub async fn fire_timers_at(&self, now_ms: i64) -> Result<usize, WorkflowError> {
        self.with_engine(move |e| e.fire_timers(now_ms)).await
    }

    /// How many top-level executions are running.
    pub async fn running(&self) -> Result<usize, WorkflowError> {
        self.with_engine(|e| e.running()).await
    }
}

#[async_trait]
impl Workflow for WorkflowEngine {
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        let (name, input) = (name.to_owned(), input.clone());
        self.with_engine(move |e| {
            let arn = format!(
                "{}:{name}",
                e.machine_arn.replace(":stateMachine:", ":execution:")
            );
            if let Some(existing) = e.load(&name)? {
                // As Step Functions: the same name and input while running is the same start;
                // otherwise the name is taken.
                return if existing.status == "RUNNING" && existing.input == input {
                    Ok(existing.arn)
                } else {
                    Err(WorkflowError::ExecutionAlreadyExists(name))
                };
            }
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            e.start(Execution {
                name: name.clone(),
                arn: arn.clone(),
                machine: Vec::new(),
                parent: None,
                map_item: None,
                input: input.clone(),
                start_time: now.clone(),
                status: "RUNNING".into(),
                position: Position::Enter {
                    state: e.root.start_at.clone(),
                    input,
                    retries: Vec::new(),
                },
                output: None,
                error: None,
                cause: None,
                entered_at: now,
            })?;
            Ok(arn)
        })
        .await
    }

    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        let (token, output) = (token.to_owned(), output.clone());
        self.with_engine(move |e| e.answer(&token, Ok(output)))
            .await
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        let (token, answer) = (token.to_owned(), Err((error.to_owned(), cause.to_owned())));
        self.with_engine(move |e| e.answer(&token, answer)).await
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError> {
        let token = token.to_owned();
        self.with_engine(move |e| e.heartbeat(&token)).await
    }

    async fn describe_execution(&self, name: &str) -> Result<ExecutionStatus, WorkflowError> {
        let name = name.to_owned();
        self.with_engine(move |e| {
            e.load(&name)?
                .map(|x| x.status())
                .ok_or(WorkflowError::ExecutionNotFound(name))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
