use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use paved_core::ports::StoreError;
use rusqlite::Connection;

/// The schema, versioned with `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    // 1: the table port and the queue port.
    "CREATE TABLE items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        attrs TEXT NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE TABLE queue_messages (
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        visible_at_ms INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt TEXT
    );
    CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at_ms);
    CREATE UNIQUE INDEX queue_messages_receipt ON queue_messages (receipt);",
    // 2: the workflow engine's executions; `doc` is the execution as JSON, `token` and
    // `wake_at_ms` are lifted out of it so callbacks and timers find their row by index.
    "CREATE TABLE wf_executions (
        name TEXT PRIMARY KEY,
        parent TEXT,
        status TEXT NOT NULL,
        doc TEXT NOT NULL,
        wake_at_ms INTEGER,
        token TEXT
    );
    CREATE UNIQUE INDEX wf_executions_token ON wf_executions (token) WHERE token IS NOT NULL;
    CREATE INDEX wf_executions_wake ON wf_executions (wake_at_ms) WHERE wake_at_ms IS NOT NULL;
    CREATE INDEX wf_executions_parent ON wf_executions (parent) WHERE parent IS NOT NULL;",
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is fsynced: it survives a crash of the process or of the machine.
    #[default]
    Full,
    /// WAL's NORMAL: a commit survives a crash of the process; a power loss may drop the
    /// last few, never corrupting the file. Markedly faster on slow disks.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(format!("{other:?} is not a durability; use full or normal")),
        }
    }
}

/// One SQLite database file holding every port's data. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) conn: Arc<Mutex<Connection>>,
    /// Woken whenever a queue message is committed, so pollers need not spin.
    pub(crate) messages_sent: Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full syncs, so that
    /// a committed write survives a crash of the process or the machine.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            messages_sent: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Runs blocking SQLite work off the async runtime's worker threads.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || work(&mut conn.lock()))
            .await
            .map_err(|e| StoreError::Backend(format!("the SQLite worker stopped: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the data file has schema version {version}, newer than this paved ({}); upgrade paved",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            StoreError::Throttled(format!("the database is busy: {f}"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}
