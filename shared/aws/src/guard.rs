//! A circuit breaker around every AWS call: the ports' adapters wrapped so that after a run of
//! retryable failures (timeouts, dropped connections, throttling, each already retried by the
//! SDK) the next calls fail at once with `StoreError::Throttled` for a cool-down, instead of
//! each waiting out its own timeouts against a service that is down. Answers that are not
//! about health (a failed condition, a missing item) count as successes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use paved_core::circuit::{CallPermit, CircuitBreakers, Permit};
use paved_core::ports::{
    Condition, ExecutionStatus, Item, Key, Page, Queue, QueueMessage, ReceivedMessage,
    SortKeyRange, StoreError, Table, TransactOp, Workflow, WorkflowError,
};
use serde_json::Value;

/// Consecutive retryable failures that open a circuit.
pub const THRESHOLD: u32 = 5;
/// How long an open circuit refuses calls before one trial call.
pub const COOL_DOWN: Duration = Duration::from_secs(10);

/// An adapter behind a breaker named after its service (`dynamodb`, `sqs`, `states`).
#[derive(Debug)]
pub struct Guarded<T: ?Sized> {
    inner: Arc<T>,
    breakers: Arc<CircuitBreakers>,
    service: &'static str,
}

impl<T: ?Sized> Guarded<T> {
    pub fn new(inner: Arc<T>, breakers: Arc<CircuitBreakers>, service: &'static str) -> Self {
        Self {
            inner,
            breakers,
            service,
        }
    }

    async fn call<R, E>(
        &self,
        work: impl Future<Output = Result<R, E>>,
        retryable: impl Fn(&E) -> bool,
        refused: impl Fn(String) -> E,
    ) -> Result<R, E> {
        let permit = match self.breakers.permit(self.service, Utc::now()) {
            Permit::Allowed(permit) => permit,
            Permit::Refused { until } => {
                return Err(refused(format!(
                    "{} has been failing; not calling it again before {until} (circuit open)",
                    self.service
                )));
            }
        };
        // A call dropped half-way (its caller timed out) counts as a failure of the service.
        let mut pending = FailedIfDropped(Some(permit));
        let result = work.await;
        if let Some(permit) = pending.0.take() {
            match &result {
                Err(e) if retryable(e) => permit.failed(Utc::now()),
                _ => permit.succeeded(),
            }
        }
        result
    }
}

/// Holds a call's permit until the call ends; a call dropped before then is reported failed.
struct FailedIfDropped<'a>(Option<CallPermit<'a>>);

impl Drop for FailedIfDropped<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            permit.failed(Utc::now());
        }
    }
}

fn store_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Throttled(_))
}

fn workflow_retryable(e: &WorkflowError) -> bool {
    matches!(e, WorkflowError::Store(StoreError::Throttled(_)))
}

fn workflow_refused(m: String) -> WorkflowError {
    WorkflowError::Store(StoreError::Throttled(m))
}

#[async_trait]
impl<T: Table + ?Sized> Table for Guarded<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.call(self.inner.get(key), store_retryable, StoreError::Throttled)
            .await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.call(
            self.inner.put(item, condition),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.call(
            self.inner.delete(key, condition),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.call(
            self.inner.query(pk, range, after, limit),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        self.call(
            self.inner.transact(ops),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

#[async_trait]
impl<T: Queue + ?Sized> Queue for Guarded<T> {
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<String, StoreError> {
        self.call(
            self.inner.send(queue, message),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        self.call(
            self.inner.receive(queue, max, visibility),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), StoreError> {
        self.call(
            self.inner.delete(queue, receipt_handle),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: &[String],
    ) -> Result<(), StoreError> {
        self.call(
            self.inner.delete_batch(queue, receipt_handles),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
    async fn wait_for_messages(&self, max: Duration) {
        self.inner.wait_for_messages(max).await;
    }
    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        self.call(
            self.inner
                .change_visibility(queue, receipt_handle, visibility),
            store_retryable,
            StoreError::Throttled,
        )
        .await
    }
}

#[async_trait]
impl<T: Workflow + ?Sized> Workflow for Guarded<T> {
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        self.call(
            self.inner.start_execution(name, input),
            workflow_retryable,
            workflow_refused,
        )
        .await
    }
    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.call(
            self.inner.send_task_success(token, output),
            workflow_retryable,
            workflow_refused,
        )
        .await
    }
    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.call(
            self.inner.send_task_failure(token, error, cause),
            workflow_retryable,
            workflow_refused,
        )
        .await
    }
    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError> {
        self.call(
            self.inner.send_task_heartbeat(token),
            workflow_retryable,
            workflow_refused,
        )
        .await
    }
    async fn describe_execution(&self, name: &str) -> Result<ExecutionStatus, WorkflowError> {
        self.call(
            self.inner.describe_execution(name),
            workflow_retryable,
            workflow_refused,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A table whose every call fails as a timeout would, counting the calls that reach it.
    struct Down(AtomicUsize);

    #[async_trait]
    impl Table for Down {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if key.pk == "missing" {
                return Ok(None);
            }
            Err(StoreError::Throttled("GetItem: timed out".into()))
        }
        async fn put(&self, _: Item, _: Condition) -> Result<(), StoreError> {
            unimplemented!("not used")
        }
        async fn delete(&self, _: &Key, _: Condition) -> Result<(), StoreError> {
            unimplemented!("not used")
        }
        async fn query(
            &self,
            _: &str,
            _: &SortKeyRange,
            _: Option<&str>,
            _: usize,
        ) -> Result<Page, StoreError> {
            unimplemented!("not used")
        }
        async fn transact(&self, _: Vec<TransactOp>) -> Result<(), StoreError> {
            unimplemented!("not used")
        }
        fn max_transaction_ops(&self) -> usize {
            100
        }
    }

    #[tokio::test]
    async fn a_failing_service_is_not_called_while_the_circuit_is_open() {
        let down = Arc::new(Down(AtomicUsize::new(0)));
        let breakers = Arc::new(CircuitBreakers::new(3, Duration::from_secs(60)));
        let table = Guarded::new(Arc::clone(&down), Arc::clone(&breakers), "dynamodb");
        let key = Key::new("p", "s");
        for _ in 0..3 {
            assert!(matches!(
                table.get(&key).await,
                Err(StoreError::Throttled(_))
            ));
        }
        assert_eq!(down.0.load(Ordering::SeqCst), 3);
        for _ in 0..10 {
            let err = table.get(&key).await.expect_err("refused");
            assert!(err.to_string().contains("circuit open"), "{err}");
        }
        assert_eq!(
            down.0.load(Ordering::SeqCst),
            3,
            "no call reached the service"
        );
    }

    #[tokio::test]
    async fn answers_close_the_circuit_and_dropped_calls_count_as_failures() {
        let down = Arc::new(Down(AtomicUsize::new(0)));
        let breakers = Arc::new(CircuitBreakers::new(2, Duration::ZERO));
        let table = Guarded::new(Arc::clone(&down), Arc::clone(&breakers), "dynamodb");
        let _ = table.get(&Key::new("p", "s")).await;
        // A healthy answer (nothing there) resets the run of failures.
        assert_eq!(
            table.get(&Key::new("missing", "s")).await.expect("ok"),
            None
        );
        let _ = table.get(&Key::new("p", "s")).await;
        assert!(matches!(
            breakers.permit("dynamodb", Utc::now()),
            Permit::Allowed(_)
        ));
        // A call dropped before it finished is a failure: with the one before, the circuit opens.
        let pending = table.call(
            std::future::pending::<Result<(), StoreError>>(),
            store_retryable,
            StoreError::Throttled,
        );
        drop(tokio::time::timeout(Duration::from_millis(10), pending).await);
        assert!(matches!(
            breakers.permit("dynamodb", Utc::now() - chrono::Duration::seconds(1)),
            Permit::Refused { .. }
        ));
    }
}
