//! A local server that answers as Telegram's Bot API does (`POST /bot<token>/sendMessage`), for tests:
//! it records every request, and answers each as scripted: accepted, 500, 429 with `retry_after`, or
//! not at all (until the client gives up). teloxide is pointed at it with `TELEGRAM_API_URL`.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake answers one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Accept,
    ServerError,
    RetryAfter(u32),
    /// Holds the request this long before accepting it (past the client's timeout, it never sees the answer).
    Hang(Duration),
}

/// One request the fake received.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub token: String,
    pub method: String,
    pub body: Value,
    /// Whether it was answered as accepted.
    pub accepted: bool,
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    requests: Vec<Request>,
}

pub struct FakeBotApi {
    /// The server's base URL, for `TELEGRAM_API_URL`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeBotApi {
    /// Starts it on a free loopback port, in the current runtime.
    pub fn start() -> FakeBotApi {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/bot{token}/{method}", web::post().to(answer))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind the fake Bot API");
        let url = format!("http://{}/", server.addrs()[0]);
        actix_web::rt::spawn(server.run());
        FakeBotApi { url, state }
    }

    /// Answers the next requests so, in order; afterwards every request is accepted.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The texts of the messages accepted, in order.
    pub fn delivered(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted && r.method.eq_ignore_ascii_case("sendMessage"))
            .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let token = req.match_info().get("token").unwrap_or_default().to_owned();
    let method = req
        .match_info()
        .get("method")
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let next = state
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(Answer::Accept);
    let accepted = matches!(next, Answer::Accept | Answer::Hang(_));
    let message_id = {
        let mut s = state.lock().unwrap();
        s.requests.push(Request {
            token,
            method,
            body: body.clone(),
            accepted,
        });
        s.requests.len()
    };
    match next {
        Answer::ServerError => HttpResponse::InternalServerError().json(json!({
            "ok": false, "error_code": 500, "description": "Internal Server Error"
        })),
        Answer::RetryAfter(seconds) => HttpResponse::TooManyRequests().json(json!({
            "ok": false, "error_code": 429,
            "description": format!("Too Many Requests: retry after {seconds}"),
            "parameters": { "retry_after": seconds }
        })),
        Answer::Hang(d) => {
            actix_web::rt::time::sleep(d).await;
            accepted_answer(message_id, &body)
        }
        Answer::Accept => accepted_answer(message_id, &body),
    }
}

/// `{"ok": true, "result": Message}` as the Bot API answers sendMessage.
fn accepted_answer(message_id: usize, body: &Value) -> HttpResponse {
    let chat_id = body["chat_id"].as_i64().unwrap_or(1);
    HttpResponse::Ok().json(json!({
        "ok": true,
        "result": {
            "message_id": message_id,
            "date": 1_767_571_200,
            "chat": { "id": chat_id, "type": "private", "first_name": "ops" },
            "from": { "id": 42, "is_bot": true, "first_name": "tracewatch" },
            "text": body["text"],
        }
    }))
}
