//! api-server: parses flags and environment, opens the store, serves the REST API.

use actix_web::{App, HttpServer, web};
use anyhow::{Context, Result};
use api_server::{AppState, routes};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use store_pg::Store;

#[derive(Parser)]
#[command(version, about = "tracewatch REST API")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "TRACEWATCH_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// PostgreSQL URL; the embedded store is used when it is not set. Never printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, env = "TRACEWATCH_DATA_DIR", default_value = store_pg::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

#[actix_web::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let store = Store::open(args.database_url.as_deref(), &args.data_dir)
        .await
        .context("cannot open the store")?;
    eprintln!(
        "api-server: {} store, listening on http://{}",
        store.backend_name(),
        args.listen
    );
    let state = web::Data::new(AppState { store });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .bind(args.listen)
    .with_context(|| format!("cannot listen on {}", args.listen))?
    .run()
    .await
    .context("server stopped")
}
