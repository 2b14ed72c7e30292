//! The dashboard: one page and its assets (app.js, the incidents.js module it imports, app.css),
//! built into the binary (no other server, no CDN; works offline). Its routes (`/`, `/anomalies`,
//! `/anomalies/<id>`, `/incidents/<id>`, `/config`) all answer the page, which draws itself from the
//! REST API. A Content-Security-Policy allows only this origin's script and style, so even a text
//! that slipped past the page's escaping could not run.

use actix_web::{HttpResponse, http::header};

const INDEX: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const INCIDENTS_JS: &str = include_str!("../../dashboard/incidents.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

pub async fn page() -> HttpResponse {
    let mut resp = asset("text/html; charset=utf-8", INDEX);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    resp
}

pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The incident views, a module of their own that app.js imports.
pub async fn incidents_script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", INCIDENTS_JS)
}

pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}
