//! The workflow port: the part of Step Functions paved uses. The provisioning state machine is
//! started per request and answered through task tokens (the callback pattern); Step Functions
//! implements it on AWS and the embedded engine locally.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// An execution of that name exists with a different input (Step Functions'
    /// `ExecutionAlreadyExists`). The same name with the same input is not an error.
    #[error("an execution named {0} exists already with a different input")]
    ExecutionAlreadyExists(String),
    /// The token is unknown, answered already, or its task timed out (`InvalidToken`,
    /// `TaskDoesNotExist`, `TaskTimedOut`). Callers log it and move on: nobody waits for it.
    #[error("the task token is no longer valid: {0}")]
    InvalidToken(String),
    #[error("no execution named {0}")]
    ExecutionNotFound(String),
    /// The engine cannot run the definition or the input (the embedded engine's subset).
    #[error("{0}")]
    Definition(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An execution's state as `DescribeExecution` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[async_trait]
pub trait Workflow: Send + Sync {
    /// Starts the state machine under `name` (paved uses the request id). Starting it again
    /// with the same input returns the same execution id.
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError>;
    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError>;
    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError>;
    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError>;
    async fn describe_execution(&self, name: &str) -> Result<ExecutionStatus, WorkflowError>;
}
