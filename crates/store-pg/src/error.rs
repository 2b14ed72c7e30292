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

impl From<diesel::result::Error> for StoreError {
    /// Decided by the kind diesel gives. A kind it does not give (PostgreSQL's "terminating
    /// connection", SQLite's "database is locked") is `Database` here; the backend that knows more
    /// from the connection's state makes it `Unavailable`.
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match error {
            Error::NotFound => StoreError::not_found("row"),
            Error::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                match kind {
                    Kind::UniqueViolation | Kind::SerializationFailure => {
                        StoreError::Conflict(message)
                    }
                    Kind::CheckViolation | Kind::NotNullViolation => StoreError::Invalid(message),
                    Kind::ClosedConnection
                    | Kind::UnableToSendCommand
                    | Kind::ReadOnlyTransaction => StoreError::Unavailable(message),
                    _ => StoreError::Database(message),
                }
            }
            Error::BrokenTransactionManager => {
                StoreError::Unavailable("the connection's transaction state was lost".into())
            }
            // The commit's failure says what happened; the rollback's that followed does not.
            Error::RollbackErrorOnCommit { commit_error, .. } => StoreError::from(*commit_error),
            other => StoreError::Database(other.to_string()),
        }
    }
}
