//! paved's ports on one SQLite file (WAL mode): the embedded backend that `paved up` runs on,
//! with nothing else to install. One file per port, plus the workflow engine.

mod db;
mod queue;
mod table;
pub mod workflow;

pub use db::{Durability, SqliteStore, create_private_dir};
pub use workflow::WorkflowEngine;
