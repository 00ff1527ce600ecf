//! paved's ports on the AWS SDKs, picked with `PAVED_BACKEND=aws`: the [`Table`] port on one
//! DynamoDB table, the [`Queue`] port on SQS and the `Workflow` port on Step Functions. They
//! honour `AWS_ENDPOINT_URL`, so the same code runs against AWS and against moto in the tests.
//! [`stack`] reads the SAM template and [`bootstrap`] creates its stateful resources on an
//! emulator; [`settings`] is where a function finds them.
//!
//! [`Table`]: paved_core::ports::Table
//! [`Queue`]: paved_core::ports::Queue

pub mod bootstrap;
pub mod config;
mod dynamodb;
mod errors;
pub mod guard;
pub mod settings;
mod sfn;
mod sqs;
pub mod stack;

pub use dynamodb::DynamoTable;
pub use settings::AwsSettings;
pub use sfn::StepFunctionsWorkflow;
pub use sqs::SqsQueue;
