//! What one retention run deleted, table by table, and how long it took.

use std::time::Duration;

/// Rows deleted by one run of the retention job, by table, and its duration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// `trace_anomalies`: resolved anomalies past the retention.
    pub anomalies: u64,
    /// `anomaly_detections`: detection keys of resolved anomalies past their retention.
    pub detection_keys: u64,
    /// `incidents`: resolved or merged incidents past the retention, with no anomaly left.
    pub incidents: u64,
    /// `detection_runs`: finished runs.
    pub runs: u64,
    /// `alert_outbox`: delivered alerts.
    pub outbox: u64,
    /// `config_history`.
    pub config_history: u64,
    /// `live_events`: all but the newest ones.
    pub live_events: u64,
    /// From the first statement to the last.
    pub took: Duration,
}

impl RetentionReport {
    /// `(table, rows deleted)` for every table the job deletes from, in the order it deletes.
    pub fn by_table(&self) -> [(&'static str, u64); 7] {
        [
            ("alert_outbox", self.outbox),
            ("anomaly_detections", self.detection_keys),
            ("trace_anomalies", self.anomalies),
            ("incidents", self.incidents),
            ("detection_runs", self.runs),
            ("config_history", self.config_history),
            ("live_events", self.live_events),
        ]
    }

    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.by_table().iter().map(|(_, n)| n).sum()
    }
}
