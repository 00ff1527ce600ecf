//! Where a function finds the stack on AWS (`PAVED_BACKEND=aws`), as the SAM template sets it,
//! with defaults that match `paved aws bootstrap` on an emulator:
//!
//! | variable | default |
//! |---|---|
//! | `PAVED_TABLE` | `paved-table` |
//! | `PAVED_TASK_QUEUE_URL` (a URL or a name) | `paved-task-queue` |
//! | `PAVED_TASK_DEAD_LETTER_QUEUE_URL` | `paved-task-dead-letter-queue` |
//! | `PAVED_NOTIFICATION_QUEUE_URL` | `paved-notification-queue` |
//! | `PAVED_NOTIFICATION_DEAD_LETTER_QUEUE_URL` | `paved-notification-dead-letter-queue` |
//! | `PAVED_STATE_MACHINE_ARN` | looked up by the name `paved-provisioning-state-machine` |
//! | `AWS_ENDPOINT_URL` | unset: AWS itself |

use std::sync::Arc;

use aws_config::SdkConfig;

use paved_core::circuit::CircuitBreakers;
use paved_core::ports::{Queue, Table, Workflow};

use crate::bootstrap::find_state_machine;
use crate::guard::{self, Guarded};
use crate::stack::physical_name;
use crate::{DynamoTable, SqsQueue, StepFunctionsWorkflow};

/// The stack prefix `paved aws bootstrap` uses by default.
pub const DEFAULT_PREFIX: &str = "paved";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    pub task_queue: String,
    pub task_dead_letter_queue: String,
    pub notification_queue: String,
    pub notification_dead_letter_queue: String,
    /// Unset: found by name when a state machine is needed ([`AwsSettings::resolve_state_machine`]).
    pub state_machine_arn: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Whether `AWS_ACCESS_KEY_ID` is set (else an emulator gets placeholder credentials).
    pub credentials_in_env: bool,
    /// Long polling of receives: zero on Lambda (the event source mapping receives), a couple
    /// of seconds for `paved up`'s own pollers.
    pub receive_wait: std::time::Duration,
}

impl AwsSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let named = |k: &str, logical: &str| {
            get(k).unwrap_or_else(|| physical_name(DEFAULT_PREFIX, logical))
        };
        Self {
            table: named("PAVED_TABLE", "Table"),
            task_queue: named("PAVED_TASK_QUEUE_URL", "TaskQueue"),
            task_dead_letter_queue: named(
                "PAVED_TASK_DEAD_LETTER_QUEUE_URL",
                "TaskDeadLetterQueue",
            ),
            notification_queue: named("PAVED_NOTIFICATION_QUEUE_URL", "NotificationQueue"),
            notification_dead_letter_queue: named(
                "PAVED_NOTIFICATION_DEAD_LETTER_QUEUE_URL",
                "NotificationDeadLetterQueue",
            ),
            state_machine_arn: get("PAVED_STATE_MACHINE_ARN"),
            endpoint: get("AWS_ENDPOINT_URL"),
            region: crate::config::region_from_env(get),
            credentials_in_env: get("AWS_ACCESS_KEY_ID").is_some(),
            receive_wait: std::time::Duration::ZERO,
        }
    }

    /// The SDK configuration: an emulator's (placeholder credentials, `us-east-1`) when
    /// `AWS_ENDPOINT_URL` is set without credentials, else the standard chain.
    pub async fn sdk_config(&self) -> SdkConfig {
        match &self.endpoint {
            Some(endpoint) if !self.credentials_in_env => {
                crate::config::for_emulator(endpoint).await
            }
            Some(_) => {
                crate::config::load(Some(self.region.as_deref().unwrap_or("us-east-1"))).await
            }
            None => crate::config::load(self.region.as_deref()).await,
        }
    }

    /// The state machine's ARN: the configured one, or the one called
    /// `paved-provisioning-state-machine`.
    pub async fn resolve_state_machine(&self, config: &SdkConfig) -> Result<String, String> {
        if let Some(arn) = &self.state_machine_arn {
            return Ok(arn.clone());
        }
        let name = physical_name(DEFAULT_PREFIX, "ProvisioningStateMachine");
        find_state_machine(config, &name).await?.ok_or(format!(
            "no state machine called {name}: set PAVED_STATE_MACHINE_ARN, or run `paved aws bootstrap --endpoint URL` first"
        ))
    }

    /// The adapters: the table, the queues, and Step Functions (`state_machine_arn` may be
    /// unset for functions that only answer task tokens), each behind a circuit breaker.
    pub fn adapters(
        &self,
        config: &SdkConfig,
        state_machine_arn: Option<&str>,
    ) -> (Arc<dyn Table>, Arc<dyn Queue>, Arc<dyn Workflow>) {
        let breakers = Arc::new(CircuitBreakers::new(guard::THRESHOLD, guard::COOL_DOWN));
        let queue = Arc::new(SqsQueue::new(config).with_long_polling(self.receive_wait));
        let workflow = Arc::new(StepFunctionsWorkflow::new(config, state_machine_arn));
        (
            self.guarded_table(config, Arc::clone(&breakers)),
            Arc::new(Guarded::new(queue, Arc::clone(&breakers), "sqs")),
            Arc::new(Guarded::new(workflow, breakers, "states")),
        )
    }

    /// Only the table, for the functions that neither queue nor start executions: their
    /// bootstraps then link no SQS or Step Functions client.
    pub fn table_adapter(&self, config: &SdkConfig) -> Arc<dyn Table> {
        let breakers = Arc::new(CircuitBreakers::new(guard::THRESHOLD, guard::COOL_DOWN));
        self.guarded_table(config, breakers)
    }

    fn guarded_table(&self, config: &SdkConfig, breakers: Arc<CircuitBreakers>) -> Arc<dyn Table> {
        let table = Arc::new(DynamoTable::new(config, &self.table));
        Arc::new(Guarded::new(table, breakers, "dynamodb"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_bootstrap_names() {
        let s = AwsSettings::from_lookup(|_| None);
        assert_eq!(s.table, "paved-table");
        assert_eq!(s.task_queue, "paved-task-queue");
        assert_eq!(
            s.notification_dead_letter_queue,
            "paved-notification-dead-letter-queue"
        );
        assert_eq!(s.state_machine_arn, None);
        let s = AwsSettings::from_lookup(|k| match k {
            "PAVED_TABLE" => Some("t".into()),
            "PAVED_STATE_MACHINE_ARN" => Some("arn:x".into()),
            "AWS_ENDPOINT_URL" => Some(" ".into()),
            _ => None,
        });
        assert_eq!(
            (s.table.as_str(), s.state_machine_arn.as_deref(), s.endpoint),
            ("t", Some("arn:x"), None)
        );
    }

    #[test]
    fn the_template_sets_the_variables_the_functions_read() {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let _ = AwsSettings::from_lookup(|k| {
            asked.borrow_mut().push(k.to_owned());
            None
        });
        let doc: serde_yaml::Value =
            serde_yaml::from_str(crate::stack::TEMPLATE).expect("template");
        let globals = doc["Globals"]["Function"]["Environment"]["Variables"]
            .as_mapping()
            .expect("global variables");
        for key in globals.keys().filter_map(|k| k.as_str()) {
            // Read by the backend's and the API's config, tracing's filter, and std's backtraces.
            let elsewhere = [
                "PAVED_BACKEND",
                "PAVED_ADMIN_GROUP",
                "RUST_LOG",
                "RUST_LIB_BACKTRACE",
            ];
            assert!(
                asked.borrow().iter().any(|a| a == key) || elsewhere.contains(&key),
                "the template sets {key}, which nothing reads"
            );
        }
    }
}
