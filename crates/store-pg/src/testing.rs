//! Test support for tracewatch's crates (feature `test-support`): each test gets its own PostgreSQL
//! database (created fresh, migrated by the store, dropped afterwards), so tests run in parallel
//! against a real server; or, for the embedded store, its own directory (`tempfile`'s [`TempDir`]).
//! `TRACEWATCH_TEST_DATABASE_URL` points at the server's maintenance database
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth on these machines).

use crate::PgStore;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
pub use tempfile::TempDir;

pub fn server_url() -> String {
    std::env::var("TRACEWATCH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let server = server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

/// A name no other test of any process uses (also a valid SQL identifier).
fn unique_name() -> String {
    format!("tracewatch_test_{}", uuid::Uuid::new_v4().simple())
}

impl TestDatabase {
    #[allow(clippy::new_without_default)]
    pub async fn new() -> TestDatabase {
        let name = unique_name();
        let mut admin = AsyncPgConnection::establish(&server_url())
            .await
            .expect("the test PostgreSQL server is reachable (see .ci/run)");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("test database created");
        TestDatabase {
            url: database_url(&name),
            name,
        }
    }

    /// Lets every lease in this database run out now, as time passing would: for tests of processes
    /// that hold leases, whose clock a test cannot move.
    pub async fn expire_leases(&self) {
        let expire = diesel::sql_query("UPDATE work_leases SET expires_at = NOW()");
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("reachable");
        expire.execute(&mut conn).await.expect("leases expired");
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url)
            .await
            .expect("store connects and migrates")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a fresh thread and runtime: Drop cannot be async, and the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&server_url()).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}
