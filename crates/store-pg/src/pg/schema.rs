//! diesel's view of the PostgreSQL schema (migrations/postgres). Kept by hand in step with the
//! migration; the conformance suite fails if they drift.

diesel::table! {
    trace_anomalies (id) {
        id -> Uuid,
        trace_id -> Text,
        span_id -> Nullable<Text>,
        anomaly_type -> Text,
        anomaly_subtype -> Nullable<Text>,
        severity -> Text,
        description -> Nullable<Text>,
        detected_at -> Nullable<Timestamptz>,
        resolved -> Nullable<Bool>,
        resolution_notes -> Nullable<Text>,
        service_name -> Nullable<Text>,
        operation -> Nullable<Text>,
        client -> Nullable<Text>,
        observed_value -> Nullable<Float8>,
        expected_value -> Nullable<Float8>,
        score -> Nullable<Float8>,
        fingerprint -> Nullable<Text>,
        window_start -> Nullable<Timestamptz>,
        window_end -> Nullable<Timestamptz>,
        occurrences -> Int8,
        last_seen_at -> Nullable<Timestamptz>,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<Text>,
        details -> Nullable<Jsonb>,
        peer_service -> Nullable<Text>,
    }
}

diesel::table! {
    anomaly_detection_config (id) {
        id -> Uuid,
        config_key -> Text,
        config_value -> Nullable<Jsonb>,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    anomaly_detections (detection_key) {
        detection_key -> Text,
        anomaly_id -> Nullable<Uuid>,
        stored_at -> Timestamptz,
    }
}

diesel::table! {
    detector_baselines (baseline_key) {
        baseline_key -> Text,
        state -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    detection_runs (id) {
        id -> Uuid,
        trigger -> Text,
        window_start -> Nullable<Timestamptz>,
        window_end -> Nullable<Timestamptz>,
        status -> Text,
        spans -> Int8,
        anomalies -> Int8,
        error -> Nullable<Text>,
        worker -> Nullable<Text>,
        requested_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        stream -> Nullable<Text>,
        count_source -> Nullable<Text>,
    }
}

diesel::table! {
    work_leases (lease_key) {
        lease_key -> Text,
        holder -> Text,
        expires_at -> Timestamptz,
        acquired_at -> Timestamptz,
    }
}

diesel::table! {
    work_cursors (cursor_key) {
        cursor_key -> Text,
        position -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alert_outbox (id) {
        id -> Int8,
        anomaly_id -> Uuid,
        event -> Text,
        created_at -> Timestamptz,
        attempts -> Int4,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
        sent_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    config_history (id) {
        id -> Int8,
        config_key -> Text,
        old_value -> Nullable<Jsonb>,
        new_value -> Nullable<Jsonb>,
        changed_by -> Text,
        changed_at -> Timestamptz,
    }
}
