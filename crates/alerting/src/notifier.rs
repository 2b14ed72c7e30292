//! The one thing a notification channel does: deliver a message, or say why not.

use std::future::Future;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NotifyError {
    /// The channel asks to wait (Telegram's 429 with `retry_after`).
    #[error("rate limited: retry after {0:?}")]
    RetryAfter(Duration),
    /// Not delivered this time (a timeout, a 5xx, a refused connection, an answer that is not the API's).
    #[error("not delivered: {0}")]
    Failed(String),
}

pub trait Notifier: Send + Sync {
    /// Sends one message (Telegram HTML). Ok only once the channel has accepted it.
    fn send(&self, text: &str) -> impl Future<Output = Result<(), NotifyError>> + Send;
}
