//! `/health/live`, `/health/ready`, `/metrics`: for orchestrators and scrapers, outside Vault's API.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use vottery_server::db::DbPool;
use vottery_server::health::routes as health;
use vottery_server::metrics::{HttpMetrics, Render};

use super::AppState;

/// `/health/ready`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
    /// `unsealed`, `sealed` or `uninitialized`.
    seal: &'static str,
}

/// Ready when the database answers and the instance is unsealed.
///
/// A sealed instance cannot serve crypto; operators reach it directly to unseal.
#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = 200, description = "Ready to serve crypto", body = Readiness),
        (status = 503, description = "The database is unavailable, or the instance is sealed or uninitialized; with `Retry-After`", body = Readiness),
    ))]
pub async fn ready(state: web::Data<AppState>, pool: web::Data<DbPool>) -> HttpResponse {
    let database = health::database(&pool).await;
    let _ = state.seal.sync_config().await;
    let seal = match (state.seal.is_initialized(), state.seal.is_sealed()) {
        (false, _) => "uninitialized",
        (true, true) => "sealed",
        (true, false) => "unsealed",
    };
    let ready = database == "ok" && seal == "unsealed";
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        database,
        seal,
    };
    health::readiness(ready, body)
}

/// Prometheus metrics: HTTP traffic, each operation's outcomes and latency, the seal state.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(state: web::Data<AppState>, http: web::Data<HttpMetrics>) -> HttpResponse {
    let mut text = String::with_capacity(16 * 1024);
    http.render(&mut text);
    state.metrics.render(&mut text);
    text.push_str("# HELP vottery_security_sealed 1 while this instance is sealed.\n# TYPE vottery_security_sealed gauge\n");
    text.push_str(if state.seal.is_sealed() {
        "vottery_security_sealed 1\n"
    } else {
        "vottery_security_sealed 0\n"
    });
    health::prometheus(text)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
