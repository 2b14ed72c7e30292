//! The repository, written once for both backends.
//!
//! diesel types every query by its backend and connection; code generic over them would need the
//! traits of each query spelled out as bounds, burying the queries. So `core/repository.rs` and
//! `core/insert.rs` (the batch insert's SQL) are compiled in each backend's module (`include!`),
//! where these are concrete:
//! - `Store`, `Conn` (the connection a task gets) and `Db` (the diesel backend);
//! - the store's `run(task)` and `write(task)`: a task on a connection, or in a write transaction;
//! - what the backends do differently: `text_matches` (case-insensitive search in the description),
//!   and the SQL of `OPEN` (an unresolved row, as the partial indexes say it), `HOURLY` (anomalies per
//!   hour and type since `$1`), `LOCK_CONFIG` (what serialises configuration updates, if the write
//!   transaction does not), and `core/insert.rs`'s constants.
//!
//! Updates that claim something (a run, alerts, a resolution) test their condition again as they
//! write, so that on PostgreSQL two callers never both win; SQLite's single writer cannot race.

use crate::error::Result;
use std::future::Future;

/// A task on the connection: an async closure whose future can move to another thread (the shape
/// diesel-async's own transactions take, spelled out here because its helper trait is private).
pub(crate) trait ConnTask<C, R>:
    AsyncFnOnce(C) -> R + FnOnce(C) -> <Self as ConnTask<C, R>>::Fut
{
    type Fut: Future<Output = R>;
}

impl<F, C, Fut, R> ConnTask<C, R> for F
where
    F: AsyncFnOnce(C) -> R + FnOnce(C) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

/// What a store's `run` and `write` take: a task on its connection, run to completion on any thread.
pub(crate) trait Task<C, T>:
    for<'c> AsyncFnOnce(&'c mut C) -> Result<T>
    + for<'c> ConnTask<&'c mut C, Result<T>, Fut: Send>
    + Send
    + 'static
{
}

impl<F, C, T> Task<C, T> for F where
    F: for<'c> AsyncFnOnce(&'c mut C) -> Result<T>
        + for<'c> ConnTask<&'c mut C, Result<T>, Fut: Send>
        + Send
        + 'static
{
}
