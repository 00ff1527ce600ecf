//! The narrow, DynamoDB-shaped ports every backend implements (`paved-sqlite` on SQLite,
//! `paved-aws` on the AWS SDKs). Repositories are written once over them.

mod clock;
mod queue;
mod table;
mod workflow;

pub use clock::{Clock, SystemClock};
pub use queue::{Queue, QueueMessage, ReceivedMessage};
pub use table::{Condition, Item, Key, Page, SortKeyRange, StoreError, Table, TransactOp};
pub use workflow::{ExecutionStatus, Workflow, WorkflowError};
