//! `/health/live`, `/health/ready`, `/metrics`: for orchestrators and scrapers, outside Vault's API.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use vottery_server::db::DbPool;
use vottery_server::metrics::{HttpMetrics, PROMETHEUS_TEXT, Render};

use super::AppState;

#[derive(Serialize)]
struct Liveness {
    status: &'static str,
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    database: &'static str,
    seal: &'static str,
}

/// Ready when the database answers and the instance is unsealed (a sealed instance cannot serve
/// crypto; operators reach it directly to unseal).
async fn ready(state: web::Data<AppState>, pool: web::Data<DbPool>) -> HttpResponse {
    let database = match tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut conn = pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    })
    .await
    {
        Ok(Some(_)) => "ok",
        _ => "unavailable",
    };
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
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

async fn metrics(state: web::Data<AppState>, http: web::Data<HttpMetrics>) -> HttpResponse {
    let mut text = String::with_capacity(16 * 1024);
    http.render(&mut text);
    state.metrics.render(&mut text);
    text.push_str("# HELP vottery_security_sealed 1 while this instance is sealed.\n# TYPE vottery_security_sealed gauge\n");
    text.push_str(if state.seal.is_sealed() {
        "vottery_security_sealed 1\n"
    } else {
        "vottery_security_sealed 0\n"
    });
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PROMETHEUS_TEXT))
        .body(text)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
