//! The [`Workflow`] port on Step Functions. Executions are named after the request, so a
//! repeated start is the same execution; a token answered already (`InvalidToken`,
//! `TaskDoesNotExist`, `TaskTimedOut`) is reported as such for the caller to log, not retry.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use paved_core::ports::{ExecutionStatus, Workflow, WorkflowError};
use serde_json::Value;

use crate::errors::{code, store_error};

#[derive(Debug)]
pub struct StepFunctionsWorkflow {
    client: Client,
    /// Unset in functions that only answer task tokens (the worker).
    state_machine_arn: Option<String>,
}

impl StepFunctionsWorkflow {
    pub fn new(config: &aws_config::SdkConfig, state_machine_arn: Option<&str>) -> Self {
        Self {
            client: Client::new(config),
            state_machine_arn: state_machine_arn.map(str::to_owned),
        }
    }

    fn state_machine(&self) -> Result<&str, WorkflowError> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            WorkflowError::Definition(
                "no state machine is configured for this function (PAVED_STATE_MACHINE_ARN)".into(),
            )
        })
    }

    fn execution_arn(&self, name: &str) -> Result<String, WorkflowError> {
        Ok(format!(
            "{}:{name}",
            self.state_machine()?
                .replacen(":stateMachine:", ":execution:", 1)
        ))
    }
}

fn token_error<E, R>(
    what: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> WorkflowError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match code(&e) {
        Some(c @ ("InvalidToken" | "TaskDoesNotExist" | "TaskTimedOut")) => {
            WorkflowError::InvalidToken(c.to_owned())
        }
        _ => WorkflowError::Store(store_error(what, e)),
    }
}

#[async_trait]
impl Workflow for StepFunctionsWorkflow {
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        match self
            .client
            .start_execution()
            .state_machine_arn(self.state_machine()?)
            .name(name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(out) => Ok(out.execution_arn),
            Err(e) if code(&e) == Some("ExecutionAlreadyExists") => {
                Err(WorkflowError::ExecutionAlreadyExists(name.to_owned()))
            }
            Err(e) => Err(WorkflowError::Store(store_error("StartExecution", e))),
        }
    }

    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskSuccess", e))
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskFailure", e))
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError> {
        self.client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskHeartbeat", e))
    }

    async fn describe_execution(&self, name: &str) -> Result<ExecutionStatus, WorkflowError> {
        let out = match self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(name)?)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if code(&e) == Some("ExecutionDoesNotExist") => {
                return Err(WorkflowError::ExecutionNotFound(name.to_owned()));
            }
            Err(e) => return Err(WorkflowError::Store(store_error("DescribeExecution", e))),
        };
        Ok(ExecutionStatus {
            status: out.status.as_str().to_owned(),
            output: out.output.and_then(|o| serde_json::from_str(&o).ok()),
            error: out.error,
            cause: out.cause,
        })
    }
}
