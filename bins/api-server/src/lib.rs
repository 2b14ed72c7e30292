//! tracewatch's REST API over the store: anomalies (list, get, resolve), detection configuration, and
//! health. `main.rs` parses the command line and starts the server; tests build the same app.

pub mod anomaly_json;
pub mod error;
pub mod routes;

use store_pg::Store;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
}
