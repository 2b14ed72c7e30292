//! Incidents as stored: detect-core's [`Incident`] (findings grouped across services, with ranked
//! probable origins) written as it stands ([`NewIncident`]) and read back ([`IncidentRecord`], whose
//! JSON is the API's shape).

mod recorder;

pub use recorder::IncidentRecorder;

use crate::model::to_datetime;
use crate::schema::incidents;
use crate::wire::{rfc3339, rfc3339_at};
use chrono::{DateTime, Utc};
use detect_core::{Incident, ServiceGraph, Severity};
use diesel::{Queryable, Selectable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    /// Quiet long enough (resolved by tracewatch), or resolved by a person.
    Resolved,
    /// A finding linked it to an older incident, which holds its findings now (`merged_into`).
    Merged,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Merged => "merged",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Resolved, Self::Merged]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl TryFrom<String> for IncidentStatus {
    type Error = String;
    fn try_from(word: String) -> Result<Self, String> {
        Self::parse(&word).ok_or_else(|| format!("unknown incident status {word}"))
    }
}

/// A probable origin as stored and shown: best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OriginJson {
    pub service_name: String,
    pub operation: Option<String>,
    pub score: f64,
    /// Why, in words.
    pub evidence: String,
}

/// Calls from one affected service to another, as learned from the traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallJson {
    pub caller: String,
    pub callee: String,
    pub calls: u64,
}

/// An incident to store, as it stands now. Writing it again (the same `id`) updates its row.
#[derive(Clone, Debug, PartialEq)]
pub struct NewIncident {
    pub id: Uuid,
    /// The fingerprint of its first finding.
    pub fingerprint: String,
    pub severity: Severity,
    pub title: String,
    pub client: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Set once it has been quiet long enough: the row is resolved then.
    pub ended_at: Option<DateTime<Utc>>,
    pub origins: Vec<OriginJson>,
    pub services: Vec<String>,
    pub calls: Vec<CallJson>,
    /// Findings (one a fingerprint) and the detections they hold.
    pub anomaly_count: i64,
    pub detections: i64,
    pub example_trace_ids: Vec<String>,
    /// Incidents merged into this one: their rows become `merged` and their anomalies move here.
    pub absorbed: Vec<Uuid>,
    /// Anomaly rows that belong to it (the batch insert's rows of its findings).
    pub anomaly_ids: Vec<Uuid>,
    /// Whether it pages: its opening, escalation, change of origin and resolution go to the outbox.
    pub notify: bool,
}

/// Example traces an incident keeps.
const MAX_EXAMPLES: usize = 10;

/// detect-core's incident ids are 32 hex digits: the same bits as a UUID.
pub fn incident_uuid(id: &str) -> Uuid {
    Uuid::try_parse(id).unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes()))
}

impl NewIncident {
    /// The stored form of `incident`; `graph` gives the calls between its services; `anomaly_ids` are
    /// the rows of findings that joined it now.
    pub fn from_incident(
        incident: &Incident,
        graph: &ServiceGraph,
        anomaly_ids: Vec<Uuid>,
        notify: bool,
    ) -> Self {
        let services = incident.services();
        let calls = graph
            .edges()
            .filter(|(caller, callee, _)| services.contains(caller) && services.contains(callee))
            .map(|(caller, callee, calls)| CallJson {
                caller: caller.to_owned(),
                callee: callee.to_owned(),
                calls,
            })
            .collect();
        let mut examples: Vec<String> = Vec::new();
        // The most severe findings' traces first.
        let mut findings: Vec<_> = incident.findings.iter().collect();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for t in findings.iter().flat_map(|f| &f.examples) {
            let t = t.to_string();
            if examples.len() < MAX_EXAMPLES && !examples.contains(&t) {
                examples.push(t);
            }
        }
        NewIncident {
            id: incident_uuid(&incident.id),
            fingerprint: incident
                .findings
                .first()
                .map(|f| f.fingerprint.clone())
                .unwrap_or_default(),
            severity: incident.severity,
            title: incident.title(),
            client: incident.client.clone(),
            started_at: to_datetime(incident.started_at),
            last_seen_at: to_datetime(incident.last_seen_at),
            ended_at: incident.ended_at.map(to_datetime),
            origins: incident
                .origins
                .iter()
                .map(|o| OriginJson {
                    service_name: o.service.clone(),
                    operation: o.operation.clone(),
                    score: if o.score.is_finite() { o.score } else { 0.0 },
                    evidence: o.evidence.clone(),
                })
                .collect(),
            services: services.into_iter().map(str::to_owned).collect(),
            calls,
            anomaly_count: incident.findings.len() as i64,
            detections: i64::from(incident.detections()),
            example_trace_ids: examples,
            absorbed: incident.absorbed.iter().map(|a| incident_uuid(a)).collect(),
            anomaly_ids,
            notify,
        }
    }

    pub fn leading_origin(&self) -> Option<&str> {
        self.origins.first().map(|o| o.service_name.as_str())
    }
}

/// A stored incident. Its JSON is the API's incident shape.
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, Selectable)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IncidentJson))]
#[diesel(table_name = incidents)]
pub struct IncidentRecord {
    pub id: Uuid,
    pub fingerprint: String,
    #[diesel(deserialize_as = String)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: IncidentStatus,
    #[diesel(deserialize_as = String)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    pub title: String,
    pub client: Option<String>,
    #[serde(serialize_with = "rfc3339_at")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_at")]
    pub last_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution_notes: Option<String>,
    /// Best first: `service_name`, `operation`, `score`, `evidence`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<OriginJson>))]
    pub origins: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub services: serde_json::Value,
    /// The calls between its services: `caller`, `callee`, `calls`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<CallJson>))]
    pub calls: serde_json::Value,
    /// Its findings (anomaly rows).
    pub anomaly_count: i64,
    pub detections: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub example_trace_ids: serde_json::Value,
    /// For a merged incident: the incident that holds its findings now.
    pub merged_into: Option<Uuid>,
    /// Whether its opening was alerted.
    #[serde(skip)]
    pub alerted: bool,
}

impl IncidentRecord {
    pub fn leading_origin(&self) -> Option<&str> {
        self.origins
            .get(0)
            .and_then(|o| o.get("service_name"))
            .and_then(|s| s.as_str())
    }
}

/// Filters of the incident list; they combine with AND.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub severity: Option<Severity>,
    pub min_severity: Option<Severity>,
    /// Incidents with a finding about this service (as its service or its peer).
    pub service: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
}

/// A position in the incident list (newest start first): the last row of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncidentCursor {
    pub started_at: DateTime<Utc>,
    pub id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_ids_are_uuids_and_anything_else_still_gets_a_stable_one() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(incident_uuid(id).simple().to_string(), id);
        assert_eq!(incident_uuid("x"), incident_uuid("x"));
        assert_ne!(incident_uuid("x"), incident_uuid("y"));
    }
}
