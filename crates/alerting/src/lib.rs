//! tracewatch's notifications. Pure parts first: [`alert`] is what an alert says (an event of an
//! incident: one anomaly row, or findings grouped by detect-core with their probable origins),
//! [`policy`] decides which messages a batch of outbox events becomes (one per incident, reminders at
//! most once per cool-down, a digest for a storm, escalations, origin changes, resolutions, flapping
//! held back), [`message`] writes them for Telegram (HTML, escaped, within the length limit; an
//! incident's message names its probable origin first). [`notifier`] is the small trait a
//! channel implements, [`telegram`] the Telegram one through teloxide, and [`backoff`] the retry delays.
//! The delivery loop over the store's outbox is composed by the binary that runs it.

pub mod alert;
pub mod backoff;
pub mod message;
pub mod notifier;
pub mod policy;
pub mod telegram;
#[cfg(feature = "test-support")]
pub mod testing;

pub use alert::{Alert, AlertEvent, AlertOrigin, IncidentSummary};
pub use backoff::retry_delay;
pub use message::{Links, MAX_MESSAGE_CHARS, escape};
pub use notifier::{Notifier, NotifyError};
pub use policy::{Delivery, Plan, Policy, PolicyState};
pub use telegram::{TelegramNotifier, TelegramSettings, TelegramSettingsError};
