//! api-server: parses flags and environment (the retention settings from `TRACEWATCH_RETENTION_*`),
//! starts tracing, validates the settings, and serves until SIGINT/SIGTERM, then drains the
//! in-process detectors.

use anyhow::{Context, Result};
use api_server::auth::Authenticator;
use api_server::pipeline::PipelineSettings;
use api_server::server::{self, ServerSettings};
use clap::Parser;
use detect_core::Severity;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "tracewatch API server: REST API, OTLP intake, in-process detection"
)]
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
    /// Generate live demo traffic (a small shop with an incident every few minutes).
    #[arg(long)]
    demo: bool,
    /// Serve the API only: no OTLP intake, no in-process detection (detector-workers do it).
    #[arg(long)]
    no_detect: bool,
    /// Largest OTLP body, as sent and after decompression.
    #[arg(long, env = "TRACEWATCH_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most spans one OTLP body may hold, counted before it is decoded: past it, 413. An empty span
    /// is two bytes on the wire and hundreds decoded, so the body limit alone does not bound memory.
    #[arg(long, env = "TRACEWATCH_MAX_SPANS_PER_REQUEST", default_value_t = tempo_client::DEFAULT_MAX_SPANS_PER_BODY)]
    max_spans_per_request: usize,
    /// Spans waiting for the detectors past which intake answers 429.
    #[arg(long, env = "TRACEWATCH_MAX_QUEUED_SPANS", default_value_t = 500_000)]
    max_queued_spans: usize,
    /// Lowest severity written to the alert outbox.
    #[arg(long, env = "TRACEWATCH_NOTIFY_MIN_SEVERITY", default_value = "HIGH", value_parser = parse_severity)]
    notify_min_severity: Severity,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "TRACEWATCH_HTTP_WORKERS", default_value_t = 0)]
    http_workers: usize,
    /// Where tracewatch sends its own spans and metrics (OTLP/HTTP base URL, such as a Collector's
    /// http://127.0.0.1:4318); not exported when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Milliseconds a first page of the anomaly list may be served from memory (0: never).
    #[arg(long, env = "TRACEWATCH_LIST_CACHE_MS", default_value_t = 1_000)]
    list_cache_ms: u64,
    /// API keys: comma-separated `role:key` (roles viewer, operator, admin, ingest). Never printed.
    #[arg(long, env = "TRACEWATCH_API_KEYS", hide_env_values = true)]
    api_keys: Option<String>,
    /// HS256 secret of accepted JWTs (Supabase's JWT secret, for example). Never printed.
    #[arg(long, env = "TRACEWATCH_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Dotted path of the JWT claim that holds the role.
    #[arg(
        long,
        env = "TRACEWATCH_JWT_ROLE_CLAIM",
        default_value = "app_metadata.tracewatch_role"
    )]
    jwt_role_claim: String,
    /// The `aud` a JWT must carry (Supabase: `authenticated`); not checked when unset.
    #[arg(long, env = "TRACEWATCH_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Telegram bot token; with TELEGRAM_CHAT_ID, HIGH and CRITICAL anomalies go to that chat. Never printed.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    telegram_bot_token: Option<String>,
    /// Telegram chat: a numeric id or an @channel.
    #[arg(long, env = "TELEGRAM_CHAT_ID")]
    telegram_chat_id: Option<String>,
    /// Another Bot API server (a self-hosted telegram-bot-api).
    #[arg(long, env = "TELEGRAM_API_URL")]
    telegram_api_url: Option<String>,
    /// The dashboard's public base URL, for links in alerts.
    #[arg(long, env = "TRACEWATCH_DASHBOARD_URL")]
    dashboard_url: Option<String>,
    /// A trace's URL in Grafana (or Tempo's UI) with `{trace_id}` in it, for links in alerts.
    #[arg(long, env = "TRACEWATCH_TRACE_URL_TEMPLATE")]
    trace_url_template: Option<String>,
    /// A trace search's URL (Grafana Explore on Tempo) with `{traceql}`, and optionally `{start}` and
    /// `{end}` (Unix milliseconds), in it: the dashboard links each finding to all of its traces.
    #[arg(long, env = "TRACEWATCH_TRACE_SEARCH_URL_TEMPLATE")]
    trace_search_url_template: Option<String>,
    /// Minutes between messages about one ongoing incident (reminders; flapping is held back as long).
    #[arg(long, env = "TRACEWATCH_ALERT_COOLDOWN_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    alert_cooldown_minutes: u32,
    /// More new incidents than this in one round are sent as one digest.
    #[arg(long, env = "TRACEWATCH_ALERT_DIGEST_ABOVE", default_value_t = 5)]
    alert_digest_above: usize,
    /// Minutes without a detection after which an incident resolves itself (0: never).
    #[arg(long, env = "TRACEWATCH_AUTO_RESOLVE_MINUTES", default_value_t = 30)]
    auto_resolve_minutes: u64,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| "must be LOW, MEDIUM, HIGH or CRITICAL".into())
}

#[actix_web::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _telemetry = api_server::telemetry::init_tracing(
        "tracewatch-api-server",
        args.otlp_endpoint.as_deref(),
    )?;
    let auth = Authenticator::new(
        args.api_keys.as_deref(),
        args.jwt_secret.as_deref(),
        &args.jwt_role_claim,
        args.jwt_audience.as_deref(),
    )
    .context("bad access-control settings")?;
    if !auth.is_enabled() {
        tracing::warn!(
            "no TRACEWATCH_API_KEYS or TRACEWATCH_JWT_SECRET: access control is off (loopback only)"
        );
    }
    if let Some(template) = &args.trace_url_template
        && !template.contains("{trace_id}")
    {
        anyhow::bail!("TRACEWATCH_TRACE_URL_TEMPLATE must contain {{trace_id}}");
    }
    if let Some(template) = &args.trace_search_url_template
        && !template.contains("{traceql}")
    {
        anyhow::bail!("TRACEWATCH_TRACE_SEARCH_URL_TEMPLATE must contain {{traceql}}");
    }
    let telegram = alerting::TelegramSettings::from_values(
        args.telegram_bot_token.as_deref(),
        args.telegram_chat_id.as_deref(),
        args.telegram_api_url.as_deref(),
    )?;
    let alerts = api_server::alerts::AlertSettings {
        telegram,
        policy: alerting::Policy {
            cooldown: chrono::Duration::minutes(i64::from(args.alert_cooldown_minutes)),
            digest_above: args.alert_digest_above,
            links: alerting::Links {
                dashboard: args.dashboard_url,
                trace: args.trace_url_template,
            },
        },
        auto_resolve_after: (args.auto_resolve_minutes > 0)
            .then(|| std::time::Duration::from_secs(args.auto_resolve_minutes * 60)),
        ..api_server::alerts::AlertSettings::default()
    };
    let retention = store_pg::RetentionSettings::from_env().context("bad retention settings")?;
    let settings = ServerSettings {
        listen: args.listen,
        database_url: args.database_url,
        data_dir: args.data_dir,
        auth,
        detect: !args.no_detect,
        demo: args.demo,
        max_body_bytes: args.max_body_bytes,
        max_spans_per_request: args.max_spans_per_request,
        pipeline: PipelineSettings {
            max_queued_spans: args.max_queued_spans,
            notify_min_severity: args.notify_min_severity,
            ..PipelineSettings::default()
        },
        http_workers: args.http_workers,
        list_cache_ttl: std::time::Duration::from_millis(args.list_cache_ms),
        alerts,
        trace_search_url_template: args.trace_search_url_template,
        retention,
    };
    let running = server::start(settings).await?;
    if args.demo {
        eprintln!(
            "tracewatch demo: open the dashboard at http://{0}/ (anomalies appear within a minute or two); \
             curl -X POST http://{0}/api/anomaly-detection/run",
            running.addr
        );
    }
    running.wait().await
}
