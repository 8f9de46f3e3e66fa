//! `/health/live`, `/health/ready` (database and security-svc), `/metrics`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use vottery_server::health::routes as health;
use vottery_server::metrics::{HttpMetrics, Render};

use crate::startup::AppState;

/// `/health/ready`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
    /// `ok`, `sealed` or `unavailable`.
    security_svc: &'static str,
}

/// Ready when PostgreSQL answers and security-svc is reachable and unsealed.
#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unavailable; with `Retry-After`", body = Readiness),
    ))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let call = state.vault.client().call(None);
    let (database, security) = tokio::join!(
        health::database(&state.pool),
        tokio::time::timeout(health::CHECK_TIMEOUT, call.seal_status())
    );
    let security_svc = match security {
        Ok(Ok(status)) if !status.sealed => "ok",
        Ok(Ok(_)) => "sealed",
        _ => "unavailable",
    };
    let ready = database == "ok" && security_svc == "ok";
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        database,
        security_svc,
    };
    health::readiness(ready, body)
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(http: web::Data<HttpMetrics>, state: web::Data<AppState>) -> HttpResponse {
    let mut text = String::with_capacity(16 * 1024);
    http.render(&mut text);
    if let Some(relay) = &state.relay {
        relay.render(&mut text);
    }
    health::prometheus(text)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
