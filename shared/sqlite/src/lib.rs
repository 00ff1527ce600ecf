//! paved's ports on one SQLite file (WAL mode): the store `paved up` runs on, with nothing
//! else to install. The [`Table`](paved_core::ports::Table) and
//! [`Queue`](paved_core::ports::Queue) ports, one file each; the embedded workflow engine
//! (`paved-workflow`) keeps its executions in the same file and commits them with the messages
//! they send, through [`SqliteStore::run`] and [`enqueue`].

mod db;
mod queue;
mod table;

pub use db::{Durability, SqliteStore, create_private_dir, store_error};
pub use queue::{enqueue, now_millis};
