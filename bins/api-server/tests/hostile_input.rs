//! Random and hostile input to every endpoint of a real server: each answer is a 4xx with a JSON body
//! naming the problem (or a 2xx where the input happens to be valid), never a 5xx or a dropped
//! connection, and the server still serves afterwards.

mod common;

use common::start;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

const PIECES: &[&str] = &[
    "%00",
    "%ff",
    "'",
    "\"",
    "<script>",
    "..%2f",
    "{",
    "}",
    "[",
    "]",
    "null",
    "-1",
    "1e309",
    "😀",
    "%zz",
    "&",
    "=",
    "CRITICAL",
    "true",
    "2026-13-45T99:00:00Z",
    "a",
    "0",
    "%",
    "+",
];

#[actix_web::test]
async fn random_input_gets_a_clear_client_error_never_a_server_error() {
    let mut server = start(|s| s.max_body_bytes = 256 * 1024).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let params = [
        "anomaly_type",
        "severity",
        "min_severity",
        "resolved",
        "since",
        "until",
        "limit",
        "cursor",
        "q",
        "service",
        "bogus",
    ];
    let mut refused = 0;
    for round in 0..300 {
        let value: String = (0..(rng.random::<u64>() % 4 + 1))
            .map(|_| pick(&mut rng, PIECES))
            .collect();
        let id: String = (0..(rng.random::<u64>() % 3 + 1))
            .map(|_| pick(&mut rng, PIECES))
            .collect();
        let len = (rng.random::<u64>() % 300) as usize;
        let body = (0..len).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
        let request = match round % 6 {
            0 => server.http.get(format!(
                "{}/api/anomalies?{}={}",
                server.base,
                pick(&mut rng, &params),
                value
            )),
            1 => server
                .http
                .get(format!("{}/api/anomalies/{id}", server.base)),
            2 => server
                .http
                .put(format!("{}/api/anomalies/{id}/resolve", server.base))
                .body(body),
            3 => server
                .http
                .put(server.url("/api/anomaly-config"))
                .header("Content-Type", "application/json")
                .body(body),
            4 => server
                .http
                .post(server.url("/api/anomaly-detection/run"))
                .body(body),
            _ => server
                .http
                .post(server.url("/v1/traces"))
                .header(
                    "Content-Type",
                    if round % 4 == 0 {
                        "application/json"
                    } else {
                        "application/x-protobuf"
                    },
                )
                .body(body),
        };
        let resp = request.send().await.expect("the server answers");
        let status = resp.status();
        assert!(!status.is_server_error(), "round {round}: {status}");
        if status.is_client_error() {
            refused += 1;
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            if ct.starts_with("application/json") {
                let body: Value = resp.json().await.expect("a JSON error body");
                assert!(
                    body["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{body}"
                );
            } else {
                // OTLP protobuf requests get a google.rpc.Status in protobuf.
                assert_eq!(ct, "application/x-protobuf", "round {round}");
            }
        }
    }
    // Nearly all of it is garbage, and is refused as such.
    assert!(refused > 250, "only {refused} of 300 refused");
    let (status, _) = server.get_json("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}
