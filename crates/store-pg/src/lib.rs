//! tracewatch's persistence: one repository API ([`Repository`]) over PostgreSQL (diesel-async, a bb8
//! pool, migrations embedded and applied at start) or, with no `DATABASE_URL`, an embedded SQLite file.

pub mod error;
pub mod model;
pub mod pg;
pub mod repository;

pub use error::{Result, StoreError};
pub use model::{
    AnomalyDetails, AnomalyFilter, AnomalyRecord, ConfigChange, Cursor, InsertOutcome, MAX_PAGE,
    NewAnomaly, OutboxItem, Page, RunRecord, RunStatus, RunTrigger,
};
pub use pg::PgStore;
pub use repository::{Repository, StoredConfigEntry};
