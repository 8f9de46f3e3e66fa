//! What both services' health routes share: liveness, the database check, and the shape of a
//! readiness or metrics answer. Each service's `routes/health.rs` adds what it depends on.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::CONTENT_TYPE;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::db::DbPool;
use crate::metrics::PROMETHEUS_TEXT;

/// How long a readiness check waits for one dependency.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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

/// `ok` when the database answers a query within [`CHECK_TIMEOUT`], else `unavailable`.
pub async fn database(pool: &DbPool) -> &'static str {
    let answered = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    })
    .await;
    if matches!(answered, Ok(Some(_))) {
        "ok"
    } else {
        "unavailable"
    }
}

/// A readiness answer: 200, or 503 with `Retry-After` when not ready.
pub fn readiness(ready: bool, body: impl Serialize) -> HttpResponse {
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Metrics in the Prometheus text format.
pub fn prometheus(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PROMETHEUS_TEXT))
        .body(text)
}
