//! Runs one task message: breaker, request bookkeeping, the driver (with heartbeats and
//! panic isolation), then the answer to the state machine.

use std::sync::Arc;
use std::time::Duration;

use paved_core::Error;
use paved_core::circuit::{CircuitBreakers, Permit};
use paved_core::messages::WorkerMessage;
use paved_core::ports::{Clock, Workflow, WorkflowError};
use paved_core::provisioning::{DriverError, codes as ownership};
use paved_core::requests::{Failure, RequestRepository, RequestStatus, StepStart};
use paved_core::resources::Reconciler;
use paved_core::tasks::{TaskAction, TaskMessage, TaskOutcome, TaskRunner, codes};
use serde_json::Value;
use tracing::Instrument;

/// Stops a step's start when its request was cancelled meanwhile.
const CANCELLED: &str = "cancelled";

/// One received message, whatever queue it came from.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    /// SQS `ApproximateReceiveCount`, this delivery included.
    pub receive_count: u32,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue's `maxReceiveCount`: on the last receive the worker gives up on the message,
    /// tells the state machine why, and lets it go to the DLQ.
    pub max_receives: u32,
    /// How often a running task sends `SendTaskHeartbeat` (well under `HeartbeatSeconds`).
    pub heartbeat_every: Duration,
    /// How long one attempt holds the task's idempotency lock.
    pub attempt_timeout: Duration,
    pub breaker_threshold: u32,
    pub breaker_cool_down: Duration,
    /// The reconciliation loop's rates and tick (`PAVED_RECONCILE*`).
    pub reconcile: paved_core::resources::ReconcilerSettings,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            max_receives: 5,
            heartbeat_every: Duration::from_secs(10),
            // A lease, renewed by every heartbeat: a crashed attempt's lock lapses within it.
            // Shorter than the queue's visibility timeout, so a crashed attempt's message comes
            // back after its lock has lapsed (on AWS: visibility = 6 × the function timeout).
            attempt_timeout: Duration::from_secs(30),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(30),
            reconcile: paved_core::resources::ReconcilerSettings::default(),
        }
    }
}

/// Why a message goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    #[error("unreadable message: {0}")]
    Poison(String),
    #[error("{0}")]
    Retry(String),
    #[error("the driver crashed: {0}")]
    Crash(String),
    #[error(transparent)]
    Domain(#[from] Error),
    #[error(transparent)]
    Workflow(WorkflowError),
}

pub struct ProvisionWorker {
    pub(crate) runner: Arc<TaskRunner>,
    pub(crate) workflow: Arc<dyn Workflow>,
    pub(crate) requests: Arc<RequestRepository>,
    breakers: CircuitBreakers,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    /// Slack notifications (`None`: not sent).
    pub(crate) chat: Option<crate::chat::ChatDelivery>,
    /// The reconciliation loop: observe tasks, and the tracking of READY resources.
    pub(crate) reconciler: Option<Arc<Reconciler>>,
    providers_registered: std::sync::OnceLock<()>,
}

impl std::fmt::Debug for ProvisionWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionWorker").finish_non_exhaustive()
    }
}

impl ProvisionWorker {
    pub fn new(
        runner: Arc<TaskRunner>,
        workflow: Arc<dyn Workflow>,
        requests: Arc<RequestRepository>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            runner,
            workflow,
            requests,
            breakers: CircuitBreakers::new(config.breaker_threshold, config.breaker_cool_down),
            clock,
            config,
            chat: None,
            reconciler: None,
            providers_registered: std::sync::OnceLock::new(),
        }
    }

    /// Runs observe tasks and tracks READY resources with this reconciler.
    pub fn with_reconciler(mut self, reconciler: Reconciler) -> Self {
        self.reconciler = Some(Arc::new(reconciler.with_runner(Arc::clone(&self.runner))));
        self
    }

    /// Gives each of this worker's providers its slots item once per process, so the tick
    /// scans it for leaks even before one of its resources is READY. Best effort: a failure
    /// is tried again at the next message.
    pub async fn register_providers(&self) {
        let Some(reconciler) = &self.reconciler else {
            return;
        };
        if self.providers_registered.get().is_some() {
            return;
        }
        let types = self.runner.resource_types();
        match reconciler.register_providers(&types).await {
            Ok(()) => {
                let _ = self.providers_registered.set(());
            }
            Err(e) => tracing::warn!(error = %e, "could not register the providers for leak scans"),
        }
    }

    /// The reconciliation loop this worker runs (its tick is the schedule's).
    pub fn reconciler(&self) -> Option<&Arc<Reconciler>> {
        self.reconciler.as_ref()
    }

    /// Sends and delivers chat notifications (READY, FAILED, approvals) to these Slack targets.
    pub fn with_chat(mut self, chat: crate::chat::ChatDelivery) -> Self {
        self.chat = Some(chat);
        self
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The worker over one backend's ports, with this process's drivers: what the Lambda
    /// entry point, `paved up` and the conformance suite all run.
    pub fn on_backend(
        backend: &paved_wiring::Backend,
        drivers: Vec<Arc<dyn paved_core::provisioning::Driver>>,
        config: WorkerConfig,
        slack: Option<paved_chat::notify::SlackTargets>,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(paved_core::ports::SystemClock);
        let runner = Arc::new(TaskRunner::new(
            drivers,
            Arc::clone(&backend.table),
            Arc::clone(&clock),
            config.attempt_timeout,
        ));
        let requests = Arc::new(RequestRepository::new(
            Arc::clone(&backend.table),
            Arc::clone(&clock),
        ));
        let reconciler = backend
            .reconciler(config.reconcile.clone())
            .with_notifications(slack.is_some());
        let worker = Self::new(
            runner,
            Arc::clone(&backend.workflow),
            requests,
            Arc::clone(&clock),
            config,
        )
        .with_reconciler(reconciler);
        let Some(slack) = slack else {
            return worker;
        };
        worker.with_chat(crate::chat::ChatDelivery::new(
            slack,
            Arc::clone(&backend.table),
            clock,
            Arc::clone(&backend.queue),
            backend.queues.notifications.clone(),
        ))
    }

    /// Handles a batch concurrently; returns the ids of the messages to retry (SQS's
    /// `batchItemFailures`). Everything else may be deleted.
    pub async fn handle_batch(&self, batch: &[Delivery]) -> Vec<String> {
        let results = futures::future::join_all(batch.iter().map(|d| {
            let span = tracing::info_span!("message", message_id = %d.message_id, receive_count = d.receive_count);
            async move { (d, self.handle(d).await) }.instrument(span)
        }))
        .await;
        results
            .into_iter()
            .filter_map(|(d, r)| match r {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(message_id = %d.message_id, error = %e, "message will be retried");
                    Some(d.message_id.clone())
                }
            })
            .collect()
    }

    async fn handle(&self, d: &Delivery) -> Result<(), WorkerError> {
        self.register_providers().await;
        let task = match WorkerMessage::parse(&d.body) {
            Ok(WorkerMessage::Task(task)) => task,
            Ok(WorkerMessage::Outcome(outcome)) => return self.handle_notification(outcome).await,
            Ok(WorkerMessage::Chat(note)) => return self.handle_chat(note).await,
            Ok(WorkerMessage::Observe(task)) => return self.handle_observe(task).await,
            Ok(WorkerMessage::ScanLeaks(task)) => return self.handle_leak_scan(task).await,
            Ok(WorkerMessage::RemoveLeak(task)) => return self.handle_leak_removal(task).await,
            Err(why) => {
                // A task the state machine waits on: retrying cannot fix it, so fail the step
                // now rather than after N receives.
                let token = serde_json::from_str::<Value>(&d.body).ok().and_then(|v| {
                    v.get("taskToken")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                return match token {
                    Some(t) => self.answer(&t, Err((codes::MALFORMED_TASK, why))).await,
                    None => Err(WorkerError::Poison(why)),
                };
            }
        };
        let span = tracing::info_span!("task", task_id = %task.task_id, request_id = %task.spec.request_id);
        match self.process(&task).instrument(span).await {
            Ok(()) => Ok(()),
            Err(e) if d.receive_count >= self.config.max_receives => {
                let reason = format!(
                    "the worker failed on this task {} times, the last with: {e}; the message goes to the dead-letter queue",
                    d.receive_count
                );
                tracing::error!(task_id = %task.task_id, %reason, "poison message");
                self.give_up(&task, &reason).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// One observation of the reconciliation loop.
    async fn handle_observe(
        &self,
        task: paved_core::resources::ObserveTask,
    ) -> Result<(), WorkerError> {
        let reconciler = self.loop_half("observe")?;
        let span =
            tracing::info_span!("observe", request_id = %task.request_id, manual = task.manual);
        let outcome = reconciler
            .observe(&task, &self.breakers)
            .instrument(span)
            .await?;
        tracing::debug!(request_id = %task.request_id, ?outcome, "observed");
        Ok(())
    }

    fn loop_half(&self, what: &str) -> Result<&Arc<Reconciler>, WorkerError> {
        match &self.reconciler {
            Some(r) => Ok(r),
            None => Err(WorkerError::Poison(format!(
                "a {what} task reached a worker without a reconciler"
            ))),
        }
    }

    /// One page of a provider's leak scan.
    async fn handle_leak_scan(
        &self,
        task: paved_core::resources::LeakScanTask,
    ) -> Result<(), WorkerError> {
        let reconciler = self.loop_half("leak scan")?;
        let span = tracing::info_span!("leak_scan", provider = %task.resource_type, scan_ms = task.scan_ms);
        let report = reconciler
            .scan_leaks(&task, &self.breakers)
            .instrument(span)
            .await?;
        tracing::info!(provider = %task.resource_type, found = report.found, leaks = report.leaks, calls = report.calls, more = report.more, swept = report.swept, "leak scan page");
        Ok(())
    }

    /// An admin's deletion of a leak.
    async fn handle_leak_removal(
        &self,
        task: paved_core::resources::RemoveLeakTask,
    ) -> Result<(), WorkerError> {
        let reconciler = self.loop_half("leak removal")?;
        let span = tracing::info_span!("leak_removal", leak_id = %task.leak_id);
        reconciler
            .remove_leak(&task, &self.breakers)
            .instrument(span)
            .await?;
        Ok(())
    }

    /// The last receive of a message that keeps failing: record why, and fail the task so the
    /// state machine compensates now instead of waiting for its timeout.
    async fn give_up(&self, task: &TaskMessage, reason: &str) {
        let failure = DriverError::NonRetryable {
            code: codes::POISON_MESSAGE,
            message: reason.to_owned(),
        };
        if let Err(e) = self.record_failure(task, &failure).await {
            tracing::error!(error = %e, "could not record the poison message on its request");
        }
        if let Some(token) = &task.task_token
            && let Err(e) = self
                .answer(token, Err((codes::POISON_MESSAGE, reason.to_owned())))
                .await
        {
            tracing::error!(error = %e, "could not fail the task");
        }
    }

    async fn process(&self, task: &TaskMessage) -> Result<(), WorkerError> {
        let now = self.clock.now();
        // Dropped unreported on every path that says nothing about the provider (cancelled,
        // in progress elsewhere, non-retryable, an error of paved's own).
        let permit = match self.breakers.permit(&task.resource_type, now) {
            Permit::Allowed(permit) => permit,
            Permit::Refused { until } => {
                let reason = format!(
                    "the {} provider failed repeatedly; paved stops calling it until {until}",
                    task.resource_type
                );
                return match &task.task_token {
                    Some(t) => self.answer(t, Err((codes::CIRCUIT_OPEN, reason))).await,
                    None => Err(WorkerError::Retry(reason)),
                };
            }
        };
        if task.action == TaskAction::Apply && !self.start_step(task).await? {
            let reason = "the request was cancelled before this step ran".to_owned();
            return match &task.task_token {
                Some(t) => self.answer(t, Err((codes::CANCELLED, reason))).await,
                None => Ok(()),
            };
        }
        if matches!(task.action, TaskAction::Undo | TaskAction::Delete)
            && let Some(reason) = self.not_the_holder(task).await?
        {
            return self.refuse_not_holder(task, reason).await;
        }
        match self.run_with_heartbeats(task).await? {
            TaskOutcome::Succeeded { outputs, replayed } => {
                permit.succeeded();
                if replayed {
                    tracing::info!("duplicate delivery: replaying the stored result");
                }
                self.record_success(task, &outputs).await?;
                match &task.task_token {
                    Some(t) => self.answer(t, Ok(outputs)).await,
                    None => Ok(()),
                }
            }
            TaskOutcome::InProgress => Err(WorkerError::Retry(
                "another delivery of this task is running".into(),
            )),
            TaskOutcome::Failed(e) => {
                let retryable = matches!(e, DriverError::Retryable { .. });
                if retryable {
                    permit.failed(now);
                } else {
                    drop(permit);
                }
                tracing::warn!(code = e.code(), error = %e, "the step failed");
                if task.action == TaskAction::Delete && retryable {
                    return Err(WorkerError::Retry(e.to_string()));
                }
                if task.action == TaskAction::Undo && e.code() == ownership::NOT_OWNED {
                    return self.skip_undo(task, &e.to_string()).await;
                }
                self.record_failure(task, &e).await?;
                match &task.task_token {
                    Some(t) => self.answer(t, Err((e.code(), e.to_string()))).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// Runs the task on its own tokio task (a panicking driver fails the message, not the
    /// worker, where panics unwind: `paved up`) while heartbeating the token. The Lambda
    /// build aborts on a panic instead (Cargo.toml, `[profile.release]`): the message comes
    /// back after its visibility timeout, as after any crash.
    async fn run_with_heartbeats(&self, task: &TaskMessage) -> Result<TaskOutcome, WorkerError> {
        let runner = Arc::clone(&self.runner);
        let owned = task.clone();
        let mut run = tokio::spawn(async move { runner.run(&owned).await });
        let every = self.config.heartbeat_every;
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                joined = &mut run => {
                    return match joined {
                        Ok(result) => Ok(result?),
                        Err(e) => {
                            let why = panic_message(e);
                            tracing::error!(%why, "the driver crashed");
                            self.runner.abandon(task, &why).await?;
                            Err(WorkerError::Crash(why))
                        }
                    };
                }
                _ = beat.tick() => {
                    if let Err(e) = self.runner.renew(task).await {
                        tracing::warn!(error = %e, "renewing the task's lock failed");
                    }
                    if let Some(token) = &task.task_token
                        && let Err(e) = self.workflow.send_task_heartbeat(token).await
                    {
                        tracing::warn!(error = %e, "heartbeat refused");
                    }
                }
            }
        }
    }

    /// Answers the token. A token answered already (or timed out) is logged, not retried.
    async fn answer(
        &self,
        token: &str,
        answer: Result<Value, (&str, String)>,
    ) -> Result<(), WorkerError> {
        let sent = match &answer {
            Ok(outputs) => self.workflow.send_task_success(token, outputs).await,
            Err((code, cause)) => self.workflow.send_task_failure(token, code, cause).await,
        };
        match sent {
            Ok(()) => Ok(()),
            Err(WorkflowError::InvalidToken(why)) => {
                tracing::info!(%why, "the task token was answered already; nothing to do");
                Ok(())
            }
            Err(e) => Err(WorkerError::Workflow(e)),
        }
    }

    /// Why this undo or delete may not run: the request no longer holds its resource's name
    /// (it was cancelled while queued, or deleted, and the name may be another request's by
    /// now). Names are deterministic, so what carries the name is not this request's to touch.
    async fn not_the_holder(&self, task: &TaskMessage) -> Result<Option<String>, WorkerError> {
        let spec = &task.spec;
        let holder = self
            .requests
            .name_holder(&task.resource_type, &spec.environment, &spec.name)
            .await?;
        if holder.as_deref() == Some(spec.request_id.as_str()) {
            return Ok(None);
        }
        let now = match holder {
            Some(other) => format!("request {other} holds it now"),
            None => "nobody holds it now".to_owned(),
        };
        Ok(Some(format!(
            "request {} no longer holds the {} name {} in {} ({now}); nothing was touched",
            spec.request_id, task.resource_type, spec.name, spec.environment
        )))
    }

    /// An undo or delete for a request that no longer holds its name: the driver is not
    /// called. An undo is skipped (compensation goes on); a late or redriven delete is logged
    /// on its finished request, and one while deprovisioning fails it (`DELETE_FAILED`).
    async fn refuse_not_holder(
        &self,
        task: &TaskMessage,
        reason: String,
    ) -> Result<(), WorkerError> {
        tracing::warn!(%reason, action = ?task.action, "refused: the request does not hold the name");
        if task.action == TaskAction::Undo {
            return self.skip_undo(task, &reason).await;
        }
        let request = self.requests.get(&task.spec.request_id).await?;
        if request.status == RequestStatus::Deprovisioning {
            let refusal = DriverError::NonRetryable {
                code: ownership::NOT_OWNED,
                message: reason,
            };
            return self.record_failure(task, &refusal).await;
        }
        self.log(task, "delete_refused", reason).await
    }

    /// An undo with nothing of this request's to undo: the resource under the name is not the
    /// request's (refused by the driver's ownership check, or the request no longer holds the
    /// name). Nothing was touched; the state machine goes on compensating the steps before it.
    async fn skip_undo(&self, task: &TaskMessage, reason: &str) -> Result<(), WorkerError> {
        tracing::warn!(%reason, "undo skipped: not this request's");
        self.log(task, "undo_skipped", format!("{}: {reason}", task.step))
            .await?;
        match &task.task_token {
            Some(t) => self.answer(t, Ok(Value::Null)).await,
            None => Ok(()),
        }
    }

    /// Adds an event to the request's log, changing nothing else.
    async fn log(
        &self,
        task: &TaskMessage,
        event: &str,
        message: String,
    ) -> Result<(), WorkerError> {
        self.requests
            .update_retrying(&task.spec.request_id, |r, now| {
                r.log(now, event, message.clone());
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Marks the step running; `false` when the request was cancelled meanwhile.
    async fn start_step(&self, task: &TaskMessage) -> Result<bool, WorkerError> {
        let result = self
            .requests
            .update_retrying(&task.spec.request_id, |r, now| {
                match r.start_step(&task.step, now)? {
                    StepStart::Started { .. } => Ok(()),
                    // Nothing to write: the error only stops the update.
                    StepStart::Cancelled => Err(Error::Conflict(CANCELLED.into())),
                }
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(Error::Conflict(m)) if m == CANCELLED => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn record_success(&self, task: &TaskMessage, outputs: &Value) -> Result<(), WorkerError> {
        let r = self
            .requests
            .update_retrying(&task.spec.request_id, |r, now| {
                r.record_step_success(&task.step, task.action, outputs, now)
            })
            .await?;
        // A deprovisioned resource leaves the reconciliation loop (and its listing) now,
        // not at its next observation.
        // Best effort: the next observation forgets it otherwise.
        if r.status == RequestStatus::Deleted
            && let Some(reconciler) = &self.reconciler
        {
            let forgotten = match reconciler.resources().get(&r.id).await {
                Ok(Some(state)) => reconciler.resources().forget(&state).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = forgotten {
                tracing::warn!(request_id = %r.id, error = %e, "the deleted resource stays tracked until its next observation");
            }
        }
        Ok(())
    }

    async fn record_failure(&self, task: &TaskMessage, e: &DriverError) -> Result<(), WorkerError> {
        let failure = Failure {
            code: e.code().to_owned(),
            message: e.to_string(),
        };
        self.requests
            .update_retrying(&task.spec.request_id, |r, now| {
                r.record_step_failure(&task.step, task.action, &failure, now)
            })
            .await?;
        Ok(())
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(e) => e.to_string(),
    }
}
