// The live-event journal (see `crate::live`), written once and compiled in each backend's module (see
// `core.rs`), where `Conn` is that backend's connection.

use crate::error::Result;
use crate::incidents::IncidentRecord;
use crate::live::{LiveEvent, LiveEventBounds, LiveEventKind, LiveSubject};
use crate::model::AnomalyRecord;
use crate::schema::incidents::dsl as i;
use crate::schema::live_events::dsl as e;
use crate::schema::trace_anomalies::dsl as t;
use crate::sql_types::Id;
use diesel::dsl::{max, min};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::HashMap;
use uuid::Uuid;

pub(super) async fn bounds(conn: &mut Conn) -> Result<LiveEventBounds> {
    let (oldest, latest): (Option<i64>, Option<i64>) = e::live_events
        .select((min(e::seq), max(e::seq)))
        .first(conn)
        .await?;
    Ok(LiveEventBounds {
        oldest: oldest.unwrap_or(0),
        latest: latest.unwrap_or(0),
    })
}

/// Up to `limit` events after `after`, oldest first, each with its subject as it stands now.
pub(super) async fn after(conn: &mut Conn, after: i64, limit: i64) -> Result<Vec<LiveEvent>> {
    let rows: Vec<(i64, String, String, Uuid)> = e::live_events
        .filter(e::seq.gt(after))
        .order(e::seq)
        .limit(limit)
        .select((e::seq, e::subject, e::kind, e::subject_id))
        .load(conn)
        .await?;
    let ids_of = |wanted: &str| -> Vec<Id> {
        rows.iter()
            .filter(|(_, subject, _, _)| subject == wanted)
            .map(|(_, _, _, id)| Id(*id))
            .collect()
    };
    let anomaly_ids = ids_of("anomaly");
    let incident_ids = ids_of("incident");
    let mut anomalies: HashMap<Uuid, AnomalyRecord> = HashMap::new();
    if !anomaly_ids.is_empty() {
        let found: Vec<AnomalyRecord> = t::trace_anomalies
            .filter(t::id.eq_any(anomaly_ids))
            .select(AnomalyRecord::as_select())
            .load(conn)
            .await?;
        anomalies.extend(found.into_iter().map(|a| (a.id, a)));
    }
    let mut incidents: HashMap<Uuid, IncidentRecord> = HashMap::new();
    if !incident_ids.is_empty() {
        let found: Vec<IncidentRecord> = i::incidents
            .filter(i::id.eq_any(incident_ids))
            .select(IncidentRecord::as_select())
            .load(conn)
            .await?;
        incidents.extend(found.into_iter().map(|x| (x.id, x)));
    }
    Ok(rows
        .into_iter()
        .map(|(seq, subject, kind, id)| {
            let found = match subject.as_str() {
                "anomaly" => anomalies.get(&id).cloned().map(LiveSubject::Anomaly),
                _ => incidents.get(&id).cloned().map(LiveSubject::Incident),
            };
            LiveEvent {
                seq,
                // The CHECK constraint allows no other word.
                kind: LiveEventKind::parse(&kind).unwrap_or(LiveEventKind::Updated),
                subject: found.unwrap_or(LiveSubject::Gone(id)),
            }
        })
        .collect())
}
