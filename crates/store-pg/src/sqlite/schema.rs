//! diesel's view of the SQLite schema (migrations/sqlite). Kept by hand in step with the migration;
//! the conformance suite fails if they drift. UUIDs and JSON are `Text` (read and written through the
//! store's `Id` and `JsonText`), timestamps are `TimestamptzSqlite` (written through its `Ts`).

diesel::table! {
    trace_anomalies (id) {
        id -> Text,
        trace_id -> Text,
        span_id -> Nullable<Text>,
        anomaly_type -> Text,
        anomaly_subtype -> Nullable<Text>,
        severity -> Text,
        description -> Nullable<Text>,
        detected_at -> Nullable<TimestamptzSqlite>,
        resolved -> Nullable<Bool>,
        resolution_notes -> Nullable<Text>,
        service_name -> Nullable<Text>,
        operation -> Nullable<Text>,
        client -> Nullable<Text>,
        observed_value -> Nullable<Double>,
        expected_value -> Nullable<Double>,
        score -> Nullable<Double>,
        fingerprint -> Nullable<Text>,
        window_start -> Nullable<TimestamptzSqlite>,
        window_end -> Nullable<TimestamptzSqlite>,
        occurrences -> BigInt,
        last_seen_at -> Nullable<TimestamptzSqlite>,
        resolved_at -> Nullable<TimestamptzSqlite>,
        resolved_by -> Nullable<Text>,
        details -> Nullable<Text>,
        peer_service -> Nullable<Text>,
    }
}

diesel::table! {
    anomaly_detection_config (id) {
        id -> Text,
        config_key -> Text,
        config_value -> Nullable<Text>,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    anomaly_detections (detection_key) {
        detection_key -> Text,
        anomaly_id -> Nullable<Text>,
        stored_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    detector_baselines (baseline_key) {
        baseline_key -> Text,
        state -> Text,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    detection_runs (id) {
        id -> Text,
        trigger -> Text,
        window_start -> Nullable<TimestamptzSqlite>,
        window_end -> Nullable<TimestamptzSqlite>,
        status -> Text,
        spans -> BigInt,
        anomalies -> BigInt,
        error -> Nullable<Text>,
        worker -> Nullable<Text>,
        requested_at -> TimestamptzSqlite,
        started_at -> Nullable<TimestamptzSqlite>,
        finished_at -> Nullable<TimestamptzSqlite>,
        stream -> Nullable<Text>,
        count_source -> Nullable<Text>,
    }
}

diesel::table! {
    work_leases (lease_key) {
        lease_key -> Text,
        holder -> Text,
        expires_at -> TimestamptzSqlite,
        acquired_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    work_cursors (cursor_key) {
        cursor_key -> Text,
        position -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    alert_outbox (id) {
        id -> BigInt,
        anomaly_id -> Text,
        event -> Text,
        created_at -> TimestamptzSqlite,
        attempts -> Integer,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<TimestamptzSqlite>,
        sent_at -> Nullable<TimestamptzSqlite>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    config_history (id) {
        id -> BigInt,
        config_key -> Text,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
        changed_by -> Text,
        changed_at -> TimestamptzSqlite,
    }
}
