//! A fake Grafana Tempo for the tests and benches of this and other crates (feature `test-support`):
//! a local HTTP server that answers the requests [`crate::TempoClient`] makes (`/ready`,
//! `/api/search`, `/api/search/tags`, `/api/v2/traces/<id>`, `/api/traces/<id>`,
//! `/api/metrics/query_range`) from the [`Traffic`] it holds, in the shapes a real Tempo v3.0.3 sends
//! (`tests/fixtures/README.md`). It records every request, and misbehaves when told to: it fails the
//! next requests (500, 429 with `Retry-After`, …), answers a route with a [`Reply`] of the test's
//! choosing (a recorded answer, malformed or partial JSON, an old Tempo's 404, metrics out of range),
//! or answers a route late.

mod answers;
mod reply;
mod traffic;
mod whole_traces;

pub use reply::{Reply, Route};
pub use traffic::{StoredTrace, Traffic, one_span_trace};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `None` for a path Tempo does not serve.
    pub route: Option<Route>,
    pub path: String,
    pub query: HashMap<String, String>,
    /// `X-Scope-OrgID`.
    pub tenant: Option<String>,
    pub authorization: Option<String>,
}

/// A running fake; [`FakeTempo::start`] it in a tokio runtime (`#[actix_web::test]` makes one).
pub struct FakeTempo {
    /// The base URL, for `TempoConfig::endpoint` or `TEMPO_ENDPOINT`.
    pub url: String,
    state: web::Data<State>,
    handle: ServerHandle,
}

struct State {
    traffic: Traffic,
    /// Search answers larger than this are refused as Tempo refuses those over its gRPC limit.
    max_search_answer: AtomicUsize,
    /// Tempo's `max_spans_per_span_set`: a search asking for more is refused.
    max_spans_per_span_set: AtomicUsize,
    script: Mutex<Script>,
    requests: Mutex<Vec<Request>>,
}

/// How the fake strays from Tempo's own answers.
#[derive(Default)]
struct Script {
    /// The next this-many requests, whatever their route, get this reply.
    failing: Option<(u32, Reply)>,
    answers: HashMap<Route, Reply>,
    /// Searches whose TraceQL contains the text get the reply (a Tempo that refuses one query).
    refused_queries: Vec<(String, Reply)>,
    delays: HashMap<Route, Duration>,
}

impl FakeTempo {
    /// Starts it on a free loopback port, holding `traffic`.
    pub fn start(traffic: Traffic) -> std::io::Result<FakeTempo> {
        let state = web::Data::new(State {
            traffic,
            max_search_answer: AtomicUsize::new(usize::MAX),
            max_spans_per_span_set: AtomicUsize::new(100),
            script: Mutex::default(),
            requests: Mutex::default(),
        });
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(serve))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        let url = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(FakeTempo { url, state, handle })
    }

    pub fn traffic(&self) -> &Traffic {
        &self.state.traffic
    }

    /// Answers the next `n` requests, whatever their route, with `reply` (`u32::MAX`: until
    /// [`FakeTempo::stop_failing`]).
    pub fn fail_next(&self, n: u32, reply: Reply) {
        self.state.script.lock().unwrap().failing = (n > 0).then_some((n, reply));
    }

    pub fn stop_failing(&self) {
        self.state.script.lock().unwrap().failing = None;
    }

    /// Answers `route` with `reply` instead of from the traffic; `None` goes back to the traffic.
    pub fn answer(&self, route: Route, reply: Option<Reply>) {
        let answers = &mut self.state.script.lock().unwrap().answers;
        match reply {
            Some(reply) => answers.insert(route, reply),
            None => answers.remove(&route),
        };
    }

    /// Waits this long before answering `route` (zero: at once).
    pub fn delay(&self, route: Route, delay: Duration) {
        self.state
            .script
            .lock()
            .unwrap()
            .delays
            .insert(route, delay);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Answers every search whose TraceQL contains `text` with `reply` (for example a 400: a Tempo that
    /// does not take that query), whatever else it is asked.
    pub fn refuse_queries_containing(&self, text: &str, reply: Reply) {
        let mut script = self.state.script.lock().unwrap();
        script.refused_queries.push((text.to_owned(), reply));
    }

    /// Refuses search answers over `bytes` as Tempo refuses those over its gRPC message limit
    /// (500, `response larger than the max (N vs M)`).
    pub fn limit_search_answers(&self, bytes: usize) {
        self.state.max_search_answer.store(bytes, Ordering::Relaxed);
    }

    /// Sets Tempo's `max_spans_per_span_set` (100 by default): a search asking for more spans per span
    /// set is refused with a 400 naming the limit.
    pub fn limit_spans_per_span_set(&self, spans: usize) {
        self.state
            .max_spans_per_span_set
            .store(spans, Ordering::Relaxed);
    }

    /// How many requests `route` had so far.
    pub fn count(&self, route: Route) -> usize {
        let requests = self.state.requests.lock().unwrap();
        requests.iter().filter(|r| r.route == Some(route)).count()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Script {
    /// What to do with one request of `route`: a failure, else a delay and maybe a reply of the test's.
    fn next(&mut self, route: Option<Route>) -> Result<(Option<Duration>, Option<Reply>), Reply> {
        if let Some((n, reply)) = self.failing.take() {
            if n > 1 {
                self.failing = Some((n - 1, reply.clone()));
            }
            return Err(reply);
        }
        let Some(route) = route else {
            return Ok((None, None));
        };
        Ok((
            self.delays.get(&route).copied(),
            self.answers.get(&route).cloned(),
        ))
    }
}

async fn serve(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let route = Route::of(req.path());
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state.requests.lock().unwrap().push(Request {
        route,
        path: req.path().to_owned(),
        query: query.clone(),
        tenant: header("X-Scope-OrgID"),
        authorization: header("Authorization"),
    });
    let spss_limit = state.max_spans_per_span_set.load(Ordering::Relaxed);
    let spss = query.get("spss").and_then(|n| n.parse::<usize>().ok());
    if route == Some(Route::Search)
        && let Some(asked) = spss.filter(|&n| n > spss_limit)
    {
        let refusal = format!("spans per span set exceeds {spss_limit}. received {asked}");
        return Reply::text(400, &refusal).into_response();
    }
    let refused = state
        .script
        .lock()
        .unwrap()
        .refused_queries
        .iter()
        .find_map(|(text, reply)| {
            let asked = query.get("q").is_some_and(|q| q.contains(text.as_str()));
            (route == Some(Route::Search) && asked).then(|| reply.clone())
        });
    if let Some(reply) = refused {
        return reply.into_response();
    }
    let next = state.script.lock().unwrap().next(route);
    let reply = match next {
        Err(failure) => failure,
        Ok((delay, chosen)) => {
            if let Some(delay) = delay.filter(|d| !d.is_zero()) {
                tokio::time::sleep(delay).await;
            }
            chosen.unwrap_or_else(|| answers::answer(&state.traffic, route, req.path(), &query))
        }
    };
    let max = state.max_search_answer.load(Ordering::Relaxed);
    let reply = if route == Some(Route::Search) && reply.body.len() > max {
        let size = reply.body.len();
        Reply::text(
            500,
            &format!("response larger than the max ({size} vs {max})"),
        )
    } else {
        reply
    };
    reply.into_response()
}
