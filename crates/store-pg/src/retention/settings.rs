//! How long the retention job keeps what it may delete, and how often it runs: one typed struct,
//! read from the environment once at the edge (the binaries' `main`), each variable checked with an
//! error that names it.

use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MINUTE: Duration = Duration::from_secs(60);

/// What the retention job keeps. Nothing open is ever deleted, whatever the settings: open anomalies,
/// open incidents (and their anomalies), pending or running runs, unsent alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Resolved anomalies, and resolved or merged incidents: kept this long after both their last
    /// finding (event time) and their resolution (store time). `TRACEWATCH_RETENTION_DAYS`, 30 days.
    pub resolved: Duration,
    /// A resolved anomaly's detection keys (what makes re-running a window add nothing): kept this
    /// long after its last finding, and never longer than the anomaly itself.
    /// `TRACEWATCH_RETENTION_DETECTION_KEY_DAYS`, by default the same as `resolved`: a window re-run
    /// finds the keys of every anomaly still stored. Shorter saves space, but a re-run of a window
    /// older than this stores its resolved findings again, as new rows.
    pub detection_keys: Duration,
    /// Finished (succeeded or failed) run records, after they finished.
    /// `TRACEWATCH_RETENTION_RUN_DAYS`, 30 days.
    pub runs: Duration,
    /// Alerts delivered (or deliberately not sent), after that. `TRACEWATCH_RETENTION_OUTBOX_DAYS`, 7 days.
    pub outbox: Duration,
    /// Configuration history rows, after the change. `TRACEWATCH_RETENTION_CONFIG_HISTORY_DAYS`, 365 days.
    pub config_history: Duration,
    /// Time between runs (and how long one process holds the `retention` lease).
    /// `TRACEWATCH_RETENTION_INTERVAL_MINUTES`, 60 minutes.
    pub interval: Duration,
    /// Rows per delete statement; each is its own short transaction. Not from the environment.
    pub batch_rows: u32,
    /// Live events kept (the newest ones): how far back a live stream reconnecting with
    /// `Last-Event-ID` can be served what it missed. Not from the environment: 10,000.
    pub live_events: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            resolved: 30 * DAY,
            detection_keys: 30 * DAY,
            runs: 30 * DAY,
            outbox: 7 * DAY,
            config_history: 365 * DAY,
            interval: 60 * MINUTE,
            batch_rows: 5_000,
            live_events: 10_000,
        }
    }
}

/// A variable the settings are read from: its name, unit, default and largest value.
struct Var {
    name: &'static str,
    unit: Unit,
    max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Days,
    Minutes,
}

impl Unit {
    fn duration(self) -> Duration {
        match self {
            Unit::Days => DAY,
            Unit::Minutes => MINUTE,
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unit::Days => "days",
            Unit::Minutes => "minutes",
        })
    }
}

/// A hundred years: far enough for anyone, near enough that no date arithmetic overflows.
const MAX_DAYS: u64 = 36_500;

const RESOLVED: Var = days("TRACEWATCH_RETENTION_DAYS");
const DETECTION_KEYS: Var = days("TRACEWATCH_RETENTION_DETECTION_KEY_DAYS");
const RUNS: Var = days("TRACEWATCH_RETENTION_RUN_DAYS");
const OUTBOX: Var = days("TRACEWATCH_RETENTION_OUTBOX_DAYS");
const CONFIG_HISTORY: Var = days("TRACEWATCH_RETENTION_CONFIG_HISTORY_DAYS");
const INTERVAL: Var = Var {
    name: "TRACEWATCH_RETENTION_INTERVAL_MINUTES",
    unit: Unit::Minutes,
    max: 7 * 24 * 60,
};

const fn days(name: &'static str) -> Var {
    Var {
        name,
        unit: Unit::Days,
        max: MAX_DAYS,
    }
}

/// Every variable the settings read, for documentation and tests.
pub const VARIABLES: [&str; 6] = [
    RESOLVED.name,
    DETECTION_KEYS.name,
    RUNS.name,
    OUTBOX.name,
    CONFIG_HISTORY.name,
    INTERVAL.name,
];

/// A variable set to something other than a whole number in its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} must be a whole number of {unit} from 1 to {max}, not {value:?}")]
pub struct RetentionSettingsError {
    pub variable: &'static str,
    pub value: String,
    pub unit: Unit,
    pub max: u64,
}

impl RetentionSettings {
    /// From the process's environment; unset variables take their defaults.
    pub fn from_env() -> Result<Self, RetentionSettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (a variable's value, None when unset); unset variables take their defaults.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RetentionSettingsError> {
        let read = |var: &Var, default: Duration| match lookup(var.name) {
            None => Ok(default),
            Some(value) => parse(var, &value),
        };
        let defaults = RetentionSettings::default();
        let resolved = read(&RESOLVED, defaults.resolved)?;
        Ok(RetentionSettings {
            resolved,
            detection_keys: read(&DETECTION_KEYS, resolved)?,
            runs: read(&RUNS, defaults.runs)?,
            outbox: read(&OUTBOX, defaults.outbox)?,
            config_history: read(&CONFIG_HISTORY, defaults.config_history)?,
            interval: read(&INTERVAL, defaults.interval)?,
            batch_rows: defaults.batch_rows,
            live_events: defaults.live_events,
        })
    }
}

fn parse(var: &Var, value: &str) -> Result<Duration, RetentionSettingsError> {
    let error = || RetentionSettingsError {
        variable: var.name,
        value: value.to_owned(),
        unit: var.unit,
        max: var.max,
    };
    let n: u64 = value.trim().parse().map_err(|_| error())?;
    if !(1..=var.max).contains(&n) {
        return Err(error());
    }
    // n ≤ max keeps this far below u32::MAX.
    Ok(var.unit.duration() * u32::try_from(n).map_err(|_| error())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<RetentionSettings, RetentionSettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RetentionSettings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_variables_take_the_documented_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s, RetentionSettings::default());
        assert_eq!(s.resolved, 30 * DAY);
        assert_eq!(s.detection_keys, 30 * DAY);
        assert_eq!(s.runs, 30 * DAY);
        assert_eq!(s.outbox, 7 * DAY);
        assert_eq!(s.config_history, 365 * DAY);
        assert_eq!(s.interval, 60 * MINUTE);
        assert_eq!(s.batch_rows, 5_000);
    }

    #[test]
    fn every_variable_is_read() {
        let s = settings(&[
            ("TRACEWATCH_RETENTION_DAYS", "90"),
            ("TRACEWATCH_RETENTION_DETECTION_KEY_DAYS", "7"),
            ("TRACEWATCH_RETENTION_RUN_DAYS", "14"),
            ("TRACEWATCH_RETENTION_OUTBOX_DAYS", " 2 "),
            ("TRACEWATCH_RETENTION_CONFIG_HISTORY_DAYS", "36500"),
            ("TRACEWATCH_RETENTION_INTERVAL_MINUTES", "5"),
        ])
        .unwrap();
        assert_eq!(s.resolved, 90 * DAY);
        assert_eq!(s.detection_keys, 7 * DAY);
        assert_eq!(s.runs, 14 * DAY);
        assert_eq!(s.outbox, 2 * DAY);
        assert_eq!(s.config_history, 36_500 * DAY);
        assert_eq!(s.interval, 5 * MINUTE);
    }

    #[test]
    fn detection_keys_follow_the_anomalies_unless_set() {
        let s = settings(&[("TRACEWATCH_RETENTION_DAYS", "45")]).unwrap();
        assert_eq!(s.detection_keys, 45 * DAY);
    }

    #[test]
    fn bad_values_are_refused_naming_the_variable() {
        for variable in VARIABLES {
            for value in ["0", "-1", "abc", "", "1.5", "7d", "99999999999999999999"] {
                let error = settings(&[(variable, value)]).unwrap_err();
                assert_eq!(error.variable, variable);
                assert_eq!(error.value, value);
                let message = error.to_string();
                assert!(message.starts_with(variable), "{message}");
                assert!(message.contains(&format!("{value:?}")), "{message}");
            }
        }
        let error = settings(&[("TRACEWATCH_RETENTION_DAYS", "0")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "TRACEWATCH_RETENTION_DAYS must be a whole number of days from 1 to 36500, not \"0\""
        );
        let error = settings(&[("TRACEWATCH_RETENTION_INTERVAL_MINUTES", "10081")]).unwrap_err();
        assert_eq!(error.unit, Unit::Minutes);
    }
}
