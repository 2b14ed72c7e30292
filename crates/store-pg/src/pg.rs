//! The PostgreSQL backend: diesel-async over a bb8 pool; migrations embedded and applied at connect.
//! The repository is `core`'s; here is how a task gets a connection, and what PostgreSQL says its own
//! way: the set-based batch insert, ILIKE, and the SQL of `core`'s constants.

use crate::clock::Clock;
use crate::core::Task;
use crate::error::{Result, StoreError};
use crate::schema::trace_anomalies;
use crate::shared::escape_like;
use diesel::expression::BoxableExpression;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable};
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolableConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Connections kept by the pool.
const POOL_SIZE: u32 = 10;
/// How long a caller waits for a connection before the store is reported unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Conn = AsyncPgConnection;
type Db = Pg;

/// An unresolved row, as the partial indexes' predicates say it, so that the planner uses them.
const OPEN: &str = "resolved IS NOT TRUE";
/// A resolved row, as the index of resolved rows says it.
const RESOLVED: &str = "resolved IS TRUE";
const HOURLY: &str =
    "SELECT date_trunc('hour', detected_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
        anomaly_type, COUNT(*) AS n
    FROM trace_anomalies WHERE detected_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2";
/// Locks the configuration's rows so that two updates are applied one after the other.
const LOCK_CONFIG: Option<&str> = Some("SELECT 1 FROM anomaly_detection_config FOR UPDATE");
/// What `core/insert.rs` needs to say in PostgreSQL's words.
const ROWS: &str = "jsonb_array_elements($1) AS r(value)";
const UUID: &str = "uuid";
const TIME: &str = "timestamptz";
const GREATEST: &str = "GREATEST";
const FOR_UPDATE: &str = "FOR UPDATE";

/// `details` with `from`'s example traces (`||` rather than `jsonb_set`: no error whatever JSON a row
/// written by another program holds).
fn with_examples(details: &str, from: &str) -> String {
    format!("({details} || jsonb_build_object('example_trace_ids', {from}->'example_trace_ids'))")
}

fn text_matches(
    text: &str,
) -> Box<dyn BoxableExpression<trace_anomalies::table, Pg, SqlType = Nullable<Bool>>> {
    let pattern = format!("%{}%", escape_like(text));
    Box::new(trace_anomalies::description.ilike(pattern))
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    clock: Clock,
    /// For connections of their own ([`PgStore::listen`]). A secret: never logged or shown.
    url: std::sync::Arc<str>,
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
    use super::{Conn, PgStore as Store, RESOLVED};
    include!("core/retention.rs");
}

mod live {
    use super::Conn;
    include!("core/live.rs");
}

mod repository {
    use super::{
        Conn, Db, HOURLY, LOCK_CONFIG, OPEN, PgStore as Store, incidents, insert, live, retention,
        text_matches,
    };
    include!("core/repository.rs");
}

impl PgStore {
    /// Connects, applies pending migrations and builds the pool. The URL is never part of an error.
    pub async fn connect(database_url: &str) -> Result<Self> {
        let conn = AsyncPgConnection::establish(database_url)
            .await
            .map_err(connection_error)?;
        run_migrations(conn).await?;
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot build the connection pool: {e}"))
            })?;
        Ok(PgStore {
            pool,
            clock: Clock::default(),
            url: database_url.into(),
        })
    }

    /// A connection of its own, outside the pool, listening for live events ([`crate::live`]).
    pub async fn listen(&self) -> Result<LiveListener> {
        LiveListener::connect(&self.url).await
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    /// Runs `task` on a pooled connection. A failure that left the connection broken (the server
    /// went away mid-statement: it reports that as an ordinary error) is [`StoreError::Unavailable`].
    async fn run<T: Send + 'static>(&self, task: impl Task<Conn, T>) -> Result<T> {
        let mut conn = self.conn().await?;
        match task(&mut conn).await {
            Err(StoreError::Database(message)) if conn.is_broken() => {
                Err(StoreError::Unavailable(message))
            }
            result => result,
        }
    }

    /// Runs `task` in a transaction.
    async fn write<T: Send + 'static>(&self, task: impl Task<Conn, T>) -> Result<T> {
        self.run(async move |conn: &mut Conn| conn.transaction(task).await)
            .await
    }
}

/// Waits for the live-event journal's notifications ([`crate::LIVE_CHANNEL`]) on a connection of
/// its own. Dropped, it closes the connection.
pub struct LiveListener {
    conn: AsyncPgConnection,
}

impl LiveListener {
    async fn connect(url: &str) -> Result<Self> {
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .map_err(connection_error)?;
        let listen = diesel::sql_query(format!("LISTEN {}", crate::LIVE_CHANNEL));
        diesel_async::RunQueryDsl::execute(listen, &mut conn).await?;
        Ok(LiveListener { conn })
    }

    /// Waits until something is written (`Ok(true)`; notifications already waiting are taken with
    /// the first: several statements committed together wake the caller once) or `idle` passes (`Ok(false)`,
    /// after checking that the connection still answers). An error means the listener is lost and
    /// must be replaced; what was written meanwhile is still in the journal.
    pub async fn wait(&mut self, idle: Duration) -> Result<bool> {
        use futures_util::{FutureExt, StreamExt};
        let next = {
            let mut notifications = std::pin::pin!(self.conn.notifications_stream());
            let next = tokio::time::timeout(idle, notifications.next()).await;
            if let Ok(Some(Ok(_))) = next {
                while let Some(Some(Ok(_))) = notifications.next().now_or_never() {}
            }
            next
        };
        match next {
            Ok(Some(Ok(_))) => Ok(true),
            Ok(Some(Err(e))) => Err(StoreError::Unavailable(format!("live events: {e}"))),
            Ok(None) => Err(StoreError::Unavailable(
                "live events: the listening connection closed".into(),
            )),
            Err(_) => {
                diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut self.conn)
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("live events: {e}")))?;
                Ok(false)
            }
        }
    }
}

/// Applies pending migrations under an advisory lock, so that instances starting together do not
/// race. diesel's migration harness is synchronous: it runs on a blocking thread through
/// diesel-async's connection wrapper.
async fn run_migrations(conn: AsyncPgConnection) -> Result<()> {
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || {
        execute(&mut wrapper, "SELECT pg_advisory_lock(727377)")?;
        let applied = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Database(format!("migrations failed: {e}")));
        execute(&mut wrapper, "SELECT pg_advisory_unlock(727377)")?;
        applied
    })
    .await
    .map_err(|e| StoreError::Database(format!("migrations did not finish: {e}")))?
}

fn execute(
    conn: &mut diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>,
    sql: &str,
) -> Result<usize> {
    Ok(diesel::RunQueryDsl::execute(diesel::sql_query(sql), conn)?)
}

fn connection_error(e: diesel::ConnectionError) -> StoreError {
    // ConnectionError's text comes from the server or the socket, never from the URL.
    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"))
}
