//! `paved up`: every function of the platform in one process: the HTTP APIs, the provision
//! worker polling the task and notification queues, and (on the embedded backend) the
//! workflow engine's timers. The embedded backend keeps it all in one SQLite file; with
//! `PAVED_BACKEND=aws` the same process runs on DynamoDB, SQS and Step Functions (an emulator
//! after `paved aws bootstrap`, or AWS itself).

mod background;
mod build;
mod config;
mod serve;

pub use background::Background;
pub use build::{Platform, build};
pub use config::{HostConfig, PolicySource};
pub use serve::serve;
