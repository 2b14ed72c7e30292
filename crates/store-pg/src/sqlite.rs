//! The embedded backend, used when no `DATABASE_URL` is set: one SQLite file (SQLite bundled through
//! diesel), migrations from `migrations/sqlite` embedded and applied at open. Same behaviour as the
//! PostgreSQL backend (the repository is `core`'s); the conformance suite runs on both.
//!
//! One connection, behind a `tokio::sync::Mutex`, serves every call. SQLite lets one writer at a time
//! into a file; a pool would only queue writers on the file lock (and turn waits into `SQLITE_BUSY`),
//! while the mutex queues them fairly in the process, lets a transaction read then write without
//! another writer in between (what PostgreSQL's row locks give) and keeps the file's settings on the one
//! connection. Writes run in `BEGIN IMMEDIATE` transactions, so that another process sharing the file
//! (an API and a worker on one data directory) waits for the write lock (`busy_timeout`) instead of
//! failing halfway through a transaction.
//!
//! Every call runs to completion in its own task: a caller that gives up (a dropped HTTP request)
//! cannot leave the shared connection inside an open transaction. If a call still ends without
//! finishing (a panic), the next one opens a fresh connection.
//!
//! What SQLite says its own way: the batch insert, a Unicode-aware case-insensitive search, and the
//! SQL of `core`'s constants.

use crate::clock::Clock;
use crate::core::Task;
use crate::error::{Result, StoreError};
use crate::schema::trace_anomalies;
use crate::shared::escape_like;
use diesel::connection::SimpleConnection;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Set on every connection. WAL lets readers in other processes read while one writes; NORMAL
/// synchronisation is durable across a crash of the process (WAL's fsync at checkpoints guards against
/// power loss, at the cost of the last transactions); foreign keys are off in SQLite unless asked for;
/// a writer waits up to five seconds for another process's write lock.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
                       PRAGMA journal_mode = WAL;
                       PRAGMA synchronous = NORMAL;
                       PRAGMA foreign_keys = ON;";

type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
type Db = Sqlite;

/// An unresolved row, as the partial indexes' predicates say it, so that SQLite uses them.
const OPEN: &str = "resolved IS NOT 1";
/// A resolved row, as the index of resolved rows says it.
const RESOLVED: &str = "resolved IS 1";
/// Times are fixed-width UTC text: the hour is their first 13 characters.
const HOURLY: &str = "SELECT substr(detected_at, 1, 13) || ':00:00.000000+00:00' AS hour,
        anomaly_type, COUNT(*) AS n
    FROM trace_anomalies WHERE detected_at >= ? GROUP BY 1, 2 ORDER BY 1, 2";
/// The write transaction holds the file's write lock already.
const LOCK_CONFIG: Option<&str> = None;
/// What `core/insert.rs` needs to say in SQLite's words (times are text, see `sql_types`).
const ROWS: &str = "json_each(?) AS r";
const UUID: &str = "TEXT";
const TIME: &str = "TEXT";
const GREATEST: &str = "MAX";
/// The write transaction holds the file's write lock already.
const FOR_UPDATE: &str = "";

#[diesel::declare_sql_function]
extern "SQL" {
    /// Unicode lower case, so that text search is case-insensitive beyond ASCII as PostgreSQL's ILIKE
    /// is (SQLite's LIKE and `lower` fold ASCII only). Registered on every connection.
    fn tracewatch_lower(text: Nullable<Text>) -> Nullable<Text>;
}

/// `details` with `from`'s example traces (`->` gives JSON, which `json_set` inserts as JSON).
fn with_examples(details: &str, from: &str) -> String {
    format!("json_set({details}, '$.example_trace_ids', {from}->'example_trace_ids')")
}

fn text_matches(
    text: &str,
) -> Box<dyn BoxableExpression<trace_anomalies::table, Sqlite, SqlType = Nullable<Bool>>> {
    let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
    Box::new(
        tracewatch_lower(trace_anomalies::description)
            .like(pattern)
            .escape('\\'),
    )
}

/// The embedded store. Clones share the one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Conn>>,
    path: Arc<Path>,
    /// A call ended without finishing: the connection's state is unknown, the next call replaces it.
    interrupted: Arc<AtomicBool>,
    clock: Clock,
}

mod insert {
    use super::{Conn, FOR_UPDATE, GREATEST, OPEN, ROWS, TIME, UUID, with_examples};
    include!("core/insert.rs");
}

mod incidents {
    use super::{Conn, Db};
    include!("core/incidents.rs");
}

mod retention {
    use super::{Conn, RESOLVED, SqliteStore as Store};
    include!("core/retention.rs");
}

mod live {
    use super::Conn;
    include!("core/live.rs");
}

mod repository {
    use super::{
        Conn, Db, HOURLY, LOCK_CONFIG, OPEN, SqliteStore as Store, incidents, insert, live,
        retention, text_matches,
    };
    include!("core/repository.rs");
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the file at `path`, sets it up and
    /// applies pending migrations. A path that cannot be created or opened is
    /// [`StoreError::Unavailable`].
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let conn = open_connection(path.to_path_buf()).await?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.into(),
            interrupted: Arc::new(AtomicBool::new(false)),
            clock: Clock::default(),
        })
    }

    /// The file this store keeps its data in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `task` on the connection, alone, to completion (see the module's documentation).
    async fn run<T: Send + 'static>(&self, task: impl Task<Conn, T>) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let interrupted = Arc::clone(&self.interrupted);
        let job = tokio::spawn(async move {
            let mut conn = conn.lock_owned().await;
            // Raised while a call runs (under the lock): one that does not finish leaves it raised.
            if interrupted.swap(true, Ordering::AcqRel) {
                *conn = open_connection(path.to_path_buf()).await?;
            }
            let result = task(&mut conn).await;
            interrupted.store(false, Ordering::Release);
            result
        });
        job.await.unwrap_or_else(|e| {
            Err(StoreError::Database(format!(
                "a store operation did not finish: {e}"
            )))
        })
    }

    /// Runs `task` in a write transaction: SQLite's write lock is taken at its start.
    async fn write<T: Send + 'static>(&self, task: impl Task<Conn, T>) -> Result<T> {
        self.run(async move |conn: &mut Conn| {
            let task = async move |conn: &mut Conn| task(conn).await.map_err(Transaction::Task);
            conn.immediate_transaction(task)
                .await
                .map_err(Transaction::into_error)
        })
        .await
    }
}

/// How a write transaction failed: in its task, or in SQLite's BEGIN, COMMIT or ROLLBACK. SQLite gives
/// the latter no kind; with the transaction's own statements sound, what fails there is the file:
/// another process held the write lock past `busy_timeout`, or the disk. Retrying later may succeed.
enum Transaction {
    Task(StoreError),
    Sqlite(diesel::result::Error),
}

impl From<diesel::result::Error> for Transaction {
    fn from(error: diesel::result::Error) -> Self {
        Transaction::Sqlite(error)
    }
}

impl Transaction {
    fn into_error(self) -> StoreError {
        match self {
            Transaction::Task(error) => error,
            Transaction::Sqlite(error) => match StoreError::from(error) {
                StoreError::Database(message) => StoreError::Unavailable(message),
                other => other,
            },
        }
    }
}

async fn open_connection(path: PathBuf) -> Result<Conn> {
    tokio::task::spawn_blocking(move || connect(&path))
        .await
        .map_err(|e| StoreError::Database(format!("opening the store did not finish: {e}")))?
        .map(Conn::new)
}

/// Opens and sets up the file, then applies pending migrations in one write transaction, so that
/// processes opening the file together apply them once. Blocking: diesel's migration harness is
/// synchronous.
fn connect(path: &Path) -> Result<diesel::SqliteConnection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let url = path.to_str().ok_or_else(|| {
        StoreError::Invalid(format!("the store's path {} is not UTF-8", path.display()))
    })?;
    let cannot_open = |e: &dyn std::fmt::Display| {
        StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
    };
    let mut conn = diesel::SqliteConnection::establish(url).map_err(|e| cannot_open(&e))?;
    conn.batch_execute(PRAGMAS).map_err(|e| cannot_open(&e))?;
    tracewatch_lower_utils::register_impl(&mut conn, |text: Option<String>| {
        text.map(|t| t.to_lowercase())
    })?;
    conn.immediate_transaction(|conn| conn.run_pending_migrations(MIGRATIONS).map(|_| ()))
        .map_err(|e| StoreError::Database(format!("migrations failed: {e}")))?;
    Ok(conn)
}
