//! The store's one error type. Messages never carry a connection string or a password: connection
//! failures are reported by kind, and database errors by their message only.

/// What went wrong, typed so that the API can map each kind to a status code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] detect_core::ConfigError),
    /// The database cannot be reached or dropped the connection; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database refused (a bug, or a schema out of date).
    #[error("store error: {0}")]
    Database(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    pub fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Words of the messages a driver gives when the server went away (a restart, a killed backend, a
/// network cut). Drivers report these as plain errors, without a kind to match on.
const CONNECTION_LOST: [&str; 6] = [
    "connection closed",
    "terminating connection",
    "server closed the connection",
    "connection reset",
    "broken pipe",
    "shutting down",
];

fn is_connection_lost(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    CONNECTION_LOST.iter().any(|w| message.contains(w))
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        if is_connection_lost(&error.to_string()) {
            return StoreError::Unavailable(error.to_string());
        }
        match error {
            Error::NotFound => StoreError::not_found("row"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
                StoreError::Invalid(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            Error::DatabaseError(_, info) => StoreError::Database(info.message().to_owned()),
            Error::BrokenTransactionManager => {
                StoreError::Unavailable("the connection's transaction state was lost".into())
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}
