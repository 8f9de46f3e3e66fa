//! `/health/live`, `/health/ready` (database and security-svc), `/metrics`.

use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use vottery_server::metrics::{HttpMetrics, PROMETHEUS_TEXT, Render};

use crate::startup::AppState;

/// `/health/live`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "operations", operation_id = "live",
    responses((status = 200, description = "Alive", body = Liveness)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

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
    let database = async {
        let mut conn = state.pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    };
    let call = state.vault.client().call(None);
    let security = call.seal_status();
    let (database, security) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), database),
        tokio::time::timeout(Duration::from_secs(2), security)
    );
    let database = if matches!(database, Ok(Some(_))) {
        "ok"
    } else {
        "unavailable"
    };
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
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
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
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PROMETHEUS_TEXT))
        .body(text)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
