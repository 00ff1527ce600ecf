//! paved's ports on one SQLite file (WAL mode): the embedded backend that `paved up` runs on,
//! with nothing else to install. One file per port.

mod db;
mod queue;
mod table;

pub use db::SqliteStore;
