//! tracewatch's persistence: one repository API ([`Repository`]) over PostgreSQL (diesel-async, a bb8
//! pool, migrations embedded and applied at start) or, with no `DATABASE_URL`, an embedded SQLite file.

mod clock;
mod core;
pub mod error;
mod fold;
pub mod incidents;
pub mod live;
pub mod model;
pub mod pg;
pub mod repository;
pub mod retention;
mod rows;
mod schema;
mod shared;
mod sql_types;
pub mod sqlite;
pub mod store;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod wire;

pub use clock::Clock;
pub use error::{Result, StoreError};
pub use incidents::{
    CallJson, IncidentCursor, IncidentFilter, IncidentRecord, IncidentRecorder, IncidentStatus,
    NewIncident, OriginJson,
};
pub use live::{LIVE_CHANNEL, LiveEvent, LiveEventBounds, LiveEventKind, LiveSubject};
pub use model::{
    AnomalyDetails, AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor,
    InsertOutcome, MAX_PAGE, NewAnomaly, OutboxItem, Page, ReadCost, RunOutcome, RunRecord,
    RunStatus, RunTrigger,
};
pub use pg::{LiveListener, PgStore};
pub use repository::{Repository, StoredConfigEntry};
pub use retention::{RetentionReport, RetentionSettings, RetentionSettingsError};
pub use sqlite::SqliteStore;
pub use store::{DEFAULT_DATA_DIR, EMBEDDED_FILE, Store};
pub use wire::AnomalyJson;
