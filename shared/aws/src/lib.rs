//! paved's ports on the AWS SDKs, picked with `PAVED_BACKEND=aws`: the [`Table`] port on one
//! DynamoDB table, the [`Queue`] port on SQS, the `Workflow` port on Step Functions, and the
//! drivers' [`SecretStore`] on Secrets Manager ([`secrets`]). They
//! honour `AWS_ENDPOINT_URL`, so the same code runs against AWS and against moto in the tests.
//! [`stack`] reads the SAM template and [`bootstrap`] creates its stateful resources on an
//! emulator; [`settings`] is where a function finds them.
//!
//! [`Table`]: paved_core::ports::Table
//! [`Queue`]: paved_core::ports::Queue
//! [`SecretStore`]: paved_core::provisioning::SecretStore

pub mod bootstrap;
pub mod config;
mod dynamodb;
mod errors;
pub mod guard;
pub mod secrets;
pub mod settings;
mod sfn;
mod sqs;
pub mod stack;

pub use dynamodb::DynamoTable;
pub use secrets::{SecretsManagerSecretStore, SecretsSettings};
pub use settings::AwsSettings;
pub use sfn::StepFunctionsWorkflow;
pub use sqs::SqsQueue;
