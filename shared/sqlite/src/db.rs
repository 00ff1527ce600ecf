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
#[derive(Debug, Clone)]
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

    /// The file (and SQLite's `-wal` and `-shm` beside it) is readable by its owner only: it
    /// holds every generated credential, so an existing file with wider rights is narrowed.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        restrict_to_owner(path)?;
        let mut conn = Connection::open(path).map_err(store_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_error)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(store_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_error)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            messages_sent: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Wakes the queue's long polls: messages were sent in a transaction of the caller's own
    /// (the workflow engine's).
    pub fn messages_sent(&self) {
        self.messages_sent.notify_waiters();
    }

    /// Runs blocking SQLite work off the async runtime's worker threads, on the store's one
    /// connection (the workflow engine runs its transactions here).
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
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

/// Creates `dir` (and its parents) readable by its owner only, or narrows an existing one to
/// that: a data directory holds the store, the token-signing secret and service repositories.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Creates the database file with mode 0600 if it is missing, and narrows it and its journal
/// files to 0600 if they exist (SQLite gives new journal files the database file's mode).
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |what: &Path, e: std::io::Error| {
            StoreError::Backend(format!("restricting {} to its owner: {e}", what.display()))
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io(path, e))?;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files.iter().filter(|f| f.exists()) {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(file, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(store_error)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the data file has schema version {version}, newer than this paved ({}); upgrade paved",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(store_error)?;
        tx.execute_batch(sql).map_err(store_error)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(store_error)?;
        tx.commit().map_err(store_error)?;
    }
    Ok(())
}

/// A SQLite error as the ports report it: a busy database is throttling (retry), anything
/// else a backend failure.
pub fn store_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            StoreError::Throttled(format!("the database is busy: {f}"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn the_data_directory_and_the_store_are_readable_by_their_owner_only() {
        let parent = tempfile::tempdir().expect("dir");
        let dir = parent.path().join("data");
        create_private_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("paved.db");
        let store = SqliteStore::open(&db).expect("open");
        drop(store);
        assert_eq!(mode(&db), 0o600);
        let wal = dir.join("paved.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
    }

    #[test]
    fn the_journal_files_of_an_open_store_are_readable_by_their_owner_only() {
        use paved_core::ports::{Condition, Item, Key, Table};

        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("paved.db");
        // Journal files left with wider rights (a crash, a copy) are narrowed on open.
        for leftover in ["paved.db-wal", "paved.db-shm"] {
            let path = dir.path().join(leftover);
            std::fs::write(&path, b"").expect("leftover");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let store = SqliteStore::open(&db).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut attrs = serde_json::Map::new();
        attrs.insert("value".into(), "hunter2".into());
        runtime
            .block_on(store.put(Item::new(Key::new("SECRET", "s"), attrs), Condition::Absent))
            .expect("a write, so that SQLite has its journal open");
        for file in ["paved.db", "paved.db-wal", "paved.db-shm"] {
            assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
        }
        drop(store);
    }

    #[test]
    fn an_existing_directory_and_store_with_wider_rights_are_narrowed() {
        let parent = tempfile::tempdir().expect("dir");
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let db = dir.join("paved.db");
        drop(SqliteStore::open(&db).expect("open"));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        create_private_dir(&dir).expect("again");
        drop(SqliteStore::open(&db).expect("reopen"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
}
