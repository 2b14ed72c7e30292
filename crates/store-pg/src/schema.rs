//! diesel's view of the schema (migrations/postgres and migrations/sqlite hold the same tables). Kept
//! by hand in step with the migrations; the conformance suite fails if they drift. Ids, JSON and
//! times are the backend-neutral types of `sql_types`.

/// The column types: diesel's, and the backend-neutral ones.
mod types {
    pub use crate::sql_types::{AnyJson, AnyTime, AnyUuid};
    pub use diesel::sql_types::*;
}

diesel::table! {
    use crate::schema::types::*;
    trace_anomalies (id) {
        id -> AnyUuid,
        trace_id -> Text,
        span_id -> Nullable<Text>,
        anomaly_type -> Text,
        anomaly_subtype -> Nullable<Text>,
        severity -> Text,
        description -> Nullable<Text>,
        detected_at -> Nullable<AnyTime>,
        resolved -> Nullable<Bool>,
        resolution_notes -> Nullable<Text>,
        service_name -> Nullable<Text>,
        operation -> Nullable<Text>,
        client -> Nullable<Text>,
        observed_value -> Nullable<Float8>,
        expected_value -> Nullable<Float8>,
        score -> Nullable<Float8>,
        fingerprint -> Nullable<Text>,
        window_start -> Nullable<AnyTime>,
        window_end -> Nullable<AnyTime>,
        occurrences -> Int8,
        last_seen_at -> Nullable<AnyTime>,
        resolved_at -> Nullable<AnyTime>,
        resolved_by -> Nullable<Text>,
        details -> Nullable<AnyJson>,
        peer_service -> Nullable<Text>,
        incident_id -> Nullable<AnyUuid>,
    }
}

diesel::table! {
    use crate::schema::types::*;
    incidents (id) {
        id -> AnyUuid,
        fingerprint -> Text,
        status -> Text,
        severity -> Text,
        title -> Text,
        client -> Nullable<Text>,
        started_at -> AnyTime,
        last_seen_at -> AnyTime,
        ended_at -> Nullable<AnyTime>,
        resolved_at -> Nullable<AnyTime>,
        resolved_by -> Nullable<Text>,
        resolution_notes -> Nullable<Text>,
        origins -> AnyJson,
        services -> AnyJson,
        calls -> AnyJson,
        anomaly_count -> Int8,
        detections -> Int8,
        example_trace_ids -> AnyJson,
        merged_into -> Nullable<AnyUuid>,
        alerted -> Bool,
        updated_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    anomaly_detection_config (id) {
        id -> AnyUuid,
        config_key -> Text,
        config_value -> Nullable<AnyJson>,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    use crate::schema::types::*;
    anomaly_detections (detection_key) {
        detection_key -> Text,
        anomaly_id -> Nullable<AnyUuid>,
        stored_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    detector_baselines (baseline_key) {
        baseline_key -> Text,
        state -> AnyJson,
        updated_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    detection_runs (id) {
        id -> AnyUuid,
        trigger -> Text,
        window_start -> Nullable<AnyTime>,
        window_end -> Nullable<AnyTime>,
        status -> Text,
        spans -> Int8,
        anomalies -> Int8,
        error -> Nullable<Text>,
        worker -> Nullable<Text>,
        requested_at -> AnyTime,
        started_at -> Nullable<AnyTime>,
        finished_at -> Nullable<AnyTime>,
        stream -> Nullable<Text>,
        count_source -> Nullable<Text>,
        tempo_queries -> Nullable<Int8>,
        tempo_lookups -> Nullable<Int8>,
        tempo_bytes -> Nullable<Int8>,
        tempo_seconds -> Nullable<Float8>,
    }
}

diesel::table! {
    use crate::schema::types::*;
    work_leases (lease_key) {
        lease_key -> Text,
        holder -> Text,
        expires_at -> AnyTime,
        acquired_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    work_cursors (cursor_key) {
        cursor_key -> Text,
        position -> AnyTime,
        updated_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    alert_outbox (id) {
        id -> Int8,
        anomaly_id -> Nullable<AnyUuid>,
        event -> Text,
        created_at -> AnyTime,
        attempts -> Int4,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<AnyTime>,
        sent_at -> Nullable<AnyTime>,
        last_error -> Nullable<Text>,
        incident_id -> Nullable<AnyUuid>,
    }
}

diesel::table! {
    use crate::schema::types::*;
    config_history (id) {
        id -> Int8,
        config_key -> Text,
        old_value -> Nullable<AnyJson>,
        new_value -> Nullable<AnyJson>,
        changed_by -> Text,
        changed_at -> AnyTime,
    }
}

diesel::table! {
    use crate::schema::types::*;
    live_events (seq) {
        seq -> Int8,
        subject -> Text,
        kind -> Text,
        subject_id -> AnyUuid,
        created_at -> AnyTime,
    }
}

diesel::allow_tables_to_appear_in_same_query!(trace_anomalies, incidents);
