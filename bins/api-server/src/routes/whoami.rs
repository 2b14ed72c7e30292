//! `GET /api/whoami`: who the caller is and what it may do, so that the dashboard shows only the
//! controls the caller can use (the server checks every call anyway).

use crate::AppState;
use crate::auth::{Caller, Permission};
use actix_web::{HttpResponse, web};

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub name: String,
    /// viewer, operator, admin or ingest
    pub role: &'static str,
    /// Of read, operate, configure, ingest.
    pub permissions: Vec<&'static str>,
    /// A trace's URL with `{trace_id}` in it (Grafana or Tempo), when configured.
    pub trace_url_template: Option<String>,
    /// A trace search's URL with `{traceql}`, `{start}` and `{end}` (Unix milliseconds) in it, when
    /// configured: the link from a finding's `details.traceql` to all of its traces.
    pub trace_search_url_template: Option<String>,
}

#[utoipa::path(get, path = "/api/whoami", tag = "access",
    responses((status = 200, body = WhoAmI)), security(("bearer" = [])))]
pub async fn whoami(state: web::Data<AppState>, caller: Caller) -> HttpResponse {
    let permissions = [
        (Permission::Read, "read"),
        (Permission::Operate, "operate"),
        (Permission::Configure, "configure"),
        (Permission::Ingest, "ingest"),
    ]
    .into_iter()
    .filter(|(p, _)| caller.role.allows(*p))
    .map(|(_, name)| name)
    .collect();
    HttpResponse::Ok().json(WhoAmI {
        name: caller.name.clone(),
        role: caller.role.as_str(),
        permissions,
        trace_url_template: state.trace_url_template.clone(),
        trace_search_url_template: state.trace_search_url_template.clone(),
    })
}
