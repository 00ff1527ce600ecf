//! The provisioning worker. On AWS it is an SQS-triggered Lambda (partial batch failures,
//! a DLQ after N receives); in `paved up` the same handler is driven by [`embedded::poll`].
//!
//! It reads two kinds of messages: tasks from the state machine (run the step through its
//! driver, exactly once in effect, then answer the task token) and the state machine's final
//! notifications (mark the request READY or FAILED), and the chat notifications those and
//! approvals queue (delivered to Slack once each).

pub mod chat;
pub mod embedded;
pub mod lambda;
mod notifications;
mod worker;

pub use worker::{Delivery, ProvisionWorker, WorkerConfig};
