//! Access control on a real server: API keys and HS256 JWTs, what each role may do, clear 401/403
//! answers that never echo a token, and no unprotected server off loopback.

mod common;

use api_server::auth::Authenticator;
use api_server::server::{self, ServerSettings};
use common::{RpcStatus, TestServer, slow_after_normal, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use prost::Message;
use serde_json::{Value, json};

const VIEWER: &str = "viewer-key-0123456789";
const OPERATOR: &str = "operator-key-0123456789";
const INGEST: &str = "ingest-key-0123456789";
const SECRET: &str = "jwt-secret-of-at-least-thirty-two-bytes";

async fn protected() -> TestServer {
    start(|s| {
        s.auth = Authenticator::new(
            Some(&format!(
                "viewer:{VIEWER},operator:{OPERATOR},ingest:{INGEST}"
            )),
            Some(SECRET),
            "app_metadata.tracewatch_role",
            Some("authenticated"),
        )
        .unwrap()
    })
    .await
}

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.http.request(method, server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn admin_jwt() -> String {
    let exp = chrono::Utc::now().timestamp() + 600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "alice", "aud": "authenticated", "exp": exp, "role": "authenticated",
                 "app_metadata": { "tracewatch_role": "admin" } }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn each_role_may_do_what_it_is_for_and_no_more() {
    use reqwest::Method;
    let mut server = protected().await;

    let (status, body) = call(&server, Method::GET, "/api/anomalies", None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized");
    let (status, body) = call(
        &server,
        Method::GET,
        "/api/anomalies",
        Some("wrong-token-value"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(!body.to_string().contains("wrong-token-value"), "{body}");

    // viewer: reads, and nothing else.
    assert_eq!(
        call(&server, Method::GET, "/api/anomalies", Some(VIEWER), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/api/anomaly-config",
            Some(VIEWER),
            None
        )
        .await
        .0,
        200
    );
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/anomaly-detection/run",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert_eq!(body["details"]["role"], "viewer");
    let config = json!({ "latency_threshold_stddev": 4.0 });
    assert_eq!(
        call(
            &server,
            Method::PUT,
            "/api/anomaly-config",
            Some(VIEWER),
            Some(config.clone())
        )
        .await
        .0,
        403
    );

    // operator: runs, but no configuration.
    let (status, run) = call(
        &server,
        Method::POST,
        "/api/anomaly-detection/run",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(
        call(
            &server,
            Method::PUT,
            "/api/anomaly-config",
            Some(OPERATOR),
            Some(config.clone())
        )
        .await
        .0,
        403
    );

    // ingest: sends spans, reads nothing.
    assert_eq!(
        call(&server, Method::GET, "/api/anomalies", Some(INGEST), None)
            .await
            .0,
        403
    );
    let otlp = |token: Option<&'static str>| {
        let mut req = server
            .http
            .post(server.url("/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .body(slow_after_normal("auth", "GET /x", 5).encode_to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(otlp(Some(INGEST)).await.unwrap().status(), 200);
    let unauthenticated = otlp(None).await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["content-type"],
        "application/x-protobuf"
    );
    let status = RpcStatus::decode(unauthenticated.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 16, "UNAUTHENTICATED");
    assert_eq!(otlp(Some(VIEWER)).await.unwrap().status(), 403);

    // admin by JWT: changes the configuration, recorded under the token's subject.
    let jwt = admin_jwt();
    let (status, body) = call(
        &server,
        Method::PUT,
        "/api/anomaly-config",
        Some(&jwt),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let store = server.running.as_ref().unwrap().store.clone();
    use store_pg::Repository;
    let history = store.config_history(5).await.unwrap();
    assert_eq!(history[0].changed_by, "jwt:alice", "{history:?}");

    // Health and metrics stay open for probes and scrapers.
    assert_eq!(
        call(&server, Method::GET, "/healthz", None, None).await.0,
        200
    );
    assert_eq!(
        server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

#[actix_web::test]
async fn without_access_control_only_loopback_is_served() {
    let dir = common::TempDir::new().unwrap();
    let settings = ServerSettings::local("0.0.0.0:0".parse().unwrap(), dir.path().into());
    let error = server::start(settings).await.err().expect("refused");
    let message = format!("{error:#}");
    assert!(message.contains("without access control"), "{message}");
    assert!(message.contains("TRACEWATCH_API_KEYS"), "{message}");
}
