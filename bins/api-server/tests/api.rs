//! The REST API end to end on the embedded store: shapes, filters, pagination, resolve, configuration,
//! and a clear JSON error for every kind of bad input.

use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use api_server::{AppState, routes};
use chrono::{Duration, TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
use serde_json::{Value, json};
use store_pg::{AnomalyDetails, NewAnomaly, Repository, Store};

use store_pg::testing::TempDir;

async fn state() -> (web::Data<AppState>, TempDir) {
    let dir = TempDir::new().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let state = AppState {
        store,
        events: api_server::events::EventHub::default(),
        intake: None,
        metrics: std::sync::Arc::new(api_server::telemetry::Metrics::new()),
        list_cache: api_server::list_cache::ListCache::new(std::time::Duration::ZERO),
        trace_url_template: None,
        trace_search_url_template: None,
    };
    (web::Data::new(state), dir)
}

fn detection(i: i64, severity: Severity, service: &str) -> NewAnomaly {
    let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap() + Duration::minutes(i);
    NewAnomaly {
        detection_key: format!("k{i}"),
        fingerprint: format!("fp{i}"),
        trace_id: format!("{i:032x}"),
        span_id: None,
        anomaly_type: AnomalyType::Performance,
        anomaly_subtype: "latency_spike".into(),
        severity,
        description: format!("op {i} was slow"),
        detected_at: t,
        service_name: service.into(),
        operation: Some("GET /x".into()),
        client: None,
        peer_service: None,
        observed_value: 100.0,
        expected_value: 10.0,
        score: 5.0,
        window_start: t,
        window_end: t,
        details: AnomalyDetails::default(),
        notify: false,
    }
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(
            App::new()
                .app_data($state.clone())
                .app_data(web::Data::new(api_server::auth::Authenticator::disabled()))
                .configure(|c| routes::configure(c, false)),
        )
        .await
    };
}

async fn call<S>(app: &S, req: test::TestRequest) -> (StatusCode, Value)
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn lists_filters_and_pages_newest_first() {
    let (state, _dir) = state().await;
    let batch: Vec<NewAnomaly> = (0..7)
        .map(|i| {
            detection(
                i,
                if i % 2 == 0 {
                    Severity::High
                } else {
                    Severity::Low
                },
                if i < 4 { "cart" } else { "web" },
            )
        })
        .collect();
    state.store.insert_anomalies(&batch).await.unwrap();
    let app = app!(state);
    let (status, body) = call(&app, test::TestRequest::get().uri("/api/anomalies?limit=3")).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["description"], "op 6 was slow");
    for key in [
        "id",
        "trace_id",
        "anomaly_type",
        "anomaly_subtype",
        "severity",
        "detected_at",
        "resolved",
        "service_name",
        "observed_value",
        "expected_value",
        "score",
        "window_start",
        "window_end",
    ] {
        assert!(items[0].get(key).is_some(), "{key}");
    }
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies?limit=3&cursor={cursor}")),
    )
    .await;
    assert_eq!(next["items"][0]["description"], "op 3 was slow");
    let (_, high_web) = call(
        &app,
        test::TestRequest::get().uri("/api/anomalies?min_severity=HIGH&service=web"),
    )
    .await;
    assert_eq!(high_web["items"].as_array().unwrap().len(), 2);
    let (_, since) = call(
        &app,
        test::TestRequest::get().uri("/api/anomalies?since=2026-01-05T00:05:00Z&q=SLOW"),
    )
    .await;
    assert_eq!(since["items"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let (state, _dir) = state().await;
    let app = app!(state);
    for (uri, parameter) in [
        ("/api/anomalies?severity=SEVERE", "severity"),
        ("/api/anomalies?limit=0", "limit"),
        ("/api/anomalies?limit=abc", "limit"),
        ("/api/anomalies?since=yesterday", "since"),
        ("/api/anomalies?resolved=maybe", "resolved"),
        ("/api/anomalies?cursor=nonsense", "cursor"),
        ("/api/anomalies?colour=red", "colour"),
    ] {
        let (status, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"], "bad_request", "{uri}");
        assert_eq!(body["details"]["parameter"], parameter, "{uri}: {body}");
    }
    // An empty value is no filter (an empty form field), on every list.
    for uri in [
        "/api/anomalies?min_severity=&service=&limit=",
        "/api/incidents?status=&severity=",
    ] {
        let (status, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
}

#[actix_web::test]
async fn get_and_resolve_with_clear_errors() {
    let (state, _dir) = state().await;
    let outcome = state
        .store
        .insert_anomalies(&[detection(1, Severity::High, "cart")])
        .await
        .unwrap();
    let store_pg::InsertOutcome::Inserted(id) = outcome[0] else {
        panic!()
    };
    let app = app!(state);
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{id}")),
    )
    .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some(id.to_string().as_str()))
    );
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri("/api/anomalies/not-a-uuid"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{}", uuid::Uuid::from_u128(5))),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let resolve = format!("/api/anomalies/{id}/resolve");
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri(&resolve)
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri(&resolve)
            .set_json(json!({"resolution_notes": "restarted the pod"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resolved"], true);
    assert_eq!(body["resolution_notes"], "restarted the pod");
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri(&resolve)
            .set_json(json!({"resolution_notes": "again"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (_, kept) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{id}")),
    )
    .await;
    assert_eq!(
        kept["resolution_notes"], "restarted the pod",
        "the first resolution is kept"
    );
}

#[actix_web::test]
async fn the_peer_service_is_shown_and_filters_the_list() {
    let (state, _dir) = state().await;
    let mut wire = detection(1, Severity::High, "checkout");
    wire.peer_service = Some("payments".into());
    let outcome = state
        .store
        .insert_anomalies(&[wire, detection(2, Severity::High, "checkout")])
        .await
        .unwrap();
    let [
        store_pg::InsertOutcome::Inserted(wire_id),
        store_pg::InsertOutcome::Inserted(plain_id),
    ] = outcome[..]
    else {
        panic!("{outcome:?}")
    };
    let app = app!(state);
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{wire_id}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["peer_service"], "payments");
    let (_, body) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{plain_id}")),
    )
    .await;
    assert_eq!(
        body.get("peer_service"),
        Some(&Value::Null),
        "present and null when absent: {body}"
    );
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri("/api/anomalies?peer_service=payments"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["id"], wire_id.to_string());
    assert_eq!(items[0]["peer_service"], "payments");
}

#[actix_web::test]
async fn configuration_is_read_and_changed_as_a_whole() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let (status, body) = call(&app, test::TestRequest::get().uri("/api/anomaly-config")).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    let ratio = items.iter().find(|i| i["key"] == "sampling_ratio").unwrap();
    assert_eq!(ratio["value"], json!(0.1));
    assert!(ratio["description"].as_str().is_some());

    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri("/api/anomaly-config")
            .set_json(json!({"error_rate_threshold": 0.1, "sampling_ratio": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["key"], "sampling_ratio", "{body}");
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri("/api/anomaly-config")
            .set_json(json!({"no_such_key": 1})),
    )
    .await;
    assert_eq!(
        (status, body["details"]["key"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_such_key"))
    );
    let (status, _) = call(
        &app,
        test::TestRequest::put()
            .uri("/api/anomaly-config")
            .set_json(json!([1, 2])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, unchanged) = call(&app, test::TestRequest::get().uri("/api/anomaly-config")).await;
    let threshold = |b: &Value| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == "error_rate_threshold")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(threshold(&unchanged), json!(0.05), "nothing half applied");

    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri("/api/anomaly-config")
            .set_json(json!({"error_rate_threshold": 0.1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(threshold(&body), json!(0.1));
}

#[actix_web::test]
async fn the_configuration_schema_gives_each_key_its_range_and_default() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri("/api/anomaly-config/schema"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let keys = body["keys"].as_array().unwrap();
    let ratio = keys.iter().find(|k| k["key"] == "sampling_ratio").unwrap();
    assert_eq!(ratio["type"], "number", "{ratio}");
    assert_eq!(ratio["allowed"], "0 to 1", "{ratio}");
    assert_eq!(ratio["default"], json!(0.1), "{ratio}");
    assert!(ratio["description"].as_str().is_some());
    let nested = keys
        .iter()
        .find(|k| k["key"] == "security.flood_min_requests");
    assert_eq!(nested.unwrap()["default"], json!(300));

    // A refusal names the same range.
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri("/api/anomaly-config")
            .set_json(json!({"sampling_ratio": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["message"].as_str().unwrap();
    assert!(message.ends_with("allowed: 0 to 1"), "{message}");

    let (_, doc) = call(&app, test::TestRequest::get().uri("/api/openapi.json")).await;
    assert!(doc["paths"]["/api/anomaly-config/schema"]["get"].is_object());
    assert!(doc["components"]["schemas"]["KeySchema"]["properties"]["allowed"].is_object());
}

#[actix_web::test]
async fn health_and_readiness() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let (status, _) = call(&app, test::TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, test::TestRequest::get().uri("/readyz")).await;
    assert_eq!(
        (status, body["store"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );
}

#[actix_web::test]
async fn a_method_a_route_does_not_answer_is_405_with_what_it_allows() {
    let (state, _dir) = state().await;
    let app = app!(state);
    for (method, uri, allow) in [
        (actix_web::http::Method::TRACE, "/healthz", "GET"),
        (
            actix_web::http::Method::DELETE,
            "/api/anomaly-config",
            "GET, PUT",
        ),
        (
            actix_web::http::Method::GET,
            "/api/anomaly-detection/run",
            "POST",
        ),
    ] {
        let response = test::call_service(
            &app,
            test::TestRequest::default()
                .method(method.clone())
                .uri(uri)
                .to_request(),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {uri}"
        );
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["error"], "method_not_allowed");
    }
    let (status, _) = call(&app, test::TestRequest::get().uri("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_manual_run_is_accepted_and_can_be_followed() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let (status, body) = call(
        &app,
        test::TestRequest::post().uri("/api/anomaly-detection/run"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["trigger"], "manual");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomaly-detection/runs/{id}")),
    )
    .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );

    let window =
        json!({"window_start": "2026-01-05T00:00:00Z", "window_end": "2026-01-05T01:00:00Z"});
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/anomaly-detection/run")
            .set_json(window),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["window_start"], "2026-01-05T00:00:00Z");
    let backwards =
        json!({"window_start": "2026-01-05T01:00:00Z", "window_end": "2026-01-05T00:00:00Z"});
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/anomaly-detection/run")
            .set_json(backwards),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid"))
    );
    let (status, _) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/anomaly-detection/run")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"window_start\": 5}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // What many clients send for "no options" means the defaults, as no body does.
    for empty in ["{}", "null", " { } "] {
        let (status, body) = call(
            &app,
            test::TestRequest::post()
                .uri("/api/anomaly-detection/run")
                .insert_header(("content-type", "application/json"))
                .set_payload(empty),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{empty}: {body}");
        assert_eq!(body["window_start"], Value::Null, "{empty}");
    }
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/anomaly-detection/run")
            .set_json(json!({"window_start": "2026-01-05T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["field"], "window_end", "{body}");
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri("/api/anomaly-detection/runs/nope"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri(&format!(
            "/api/anomaly-detection/runs/{}",
            uuid::Uuid::from_u128(3)
        )),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn incidents_are_listed_shown_with_their_anomalies_and_resolved_with_clear_errors() {
    let (state, _dir) = state().await;
    let outcome = state
        .store
        .insert_anomalies(&[detection(1, Severity::High, "payment")])
        .await
        .unwrap();
    let store_pg::InsertOutcome::Inserted(row) = outcome[0] else {
        panic!()
    };
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    let incident = store_pg::NewIncident {
        id: uuid::Uuid::from_u128(7),
        fingerprint: "fp1".into(),
        severity: Severity::High,
        title: "payment: latency degradation, 2 services affected".into(),
        client: None,
        started_at: at,
        last_seen_at: at + Duration::minutes(2),
        ended_at: None,
        origins: vec![store_pg::OriginJson {
            service_name: "payment".into(),
            operation: Some("POST /pay".into()),
            score: 3.2,
            evidence: "own time ×5.8 while its callees are normal".into(),
        }],
        services: vec!["checkout".into(), "payment".into()],
        calls: vec![store_pg::CallJson {
            caller: "checkout".into(),
            callee: "payment".into(),
            calls: 120,
        }],
        anomaly_count: 1,
        detections: 1,
        example_trace_ids: vec![format!("{:032x}", 1)],
        absorbed: Vec::new(),
        anomaly_ids: vec![row],
        notify: true,
    };
    state.store.record_incidents(&[incident]).await.unwrap();
    let app = app!(state);

    let (status, page) = call(
        &app,
        test::TestRequest::get().uri("/api/incidents?status=open"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["origins"][0]["service_name"], "payment");
    assert_eq!(page["next_cursor"], Value::Null);
    let uri = "/api/incidents/00000000-0000-0000-0000-000000000007";
    let (status, detail) = call(&app, test::TestRequest::get().uri(uri)).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["calls"][0]["callee"], "payment");
    assert_eq!(detail["anomalies"][0]["id"], row.to_string());
    assert_eq!(detail["anomalies"][0]["incident_id"], detail["id"]);
    assert_eq!(detail["more_anomalies"], false);

    for (uri, parameter) in [
        ("/api/incidents?status=closed", "status"),
        ("/api/incidents?min_severity=SEVERE", "min_severity"),
        ("/api/incidents?since=yesterday", "since"),
        ("/api/incidents?limit=501", "limit"),
        ("/api/incidents?cursor=nonsense", "cursor"),
        ("/api/incidents?colour=red", "colour"),
        ("/api/anomalies?incident_id=7", "incident_id"),
    ] {
        let (status, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["details"]["parameter"], parameter, "{uri}: {body}");
    }
    let (status, _) = call(&app, test::TestRequest::get().uri("/api/incidents/7")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unknown = format!("/api/incidents/{}/resolve", uuid::Uuid::from_u128(8));
    let (status, body) = call(&app, test::TestRequest::put().uri(&unknown)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let resolve = format!("{uri}/resolve");
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri(&resolve)
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"resolution_notes\": 5}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &app,
        test::TestRequest::put()
            .uri(&resolve)
            .set_json(json!({"resolution_notes": "rolled back payment"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");
    let (_, anomaly) = call(
        &app,
        test::TestRequest::get().uri(&format!("/api/anomalies/{row}")),
    )
    .await;
    assert_eq!(
        anomaly["resolved"], true,
        "its anomalies are resolved with it"
    );
    let (status, body) = call(&app, test::TestRequest::put().uri(&resolve)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
}
