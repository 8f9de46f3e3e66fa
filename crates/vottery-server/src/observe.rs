//! The outermost middleware of both services: takes or makes the request id, runs the request
//! inside a tracing span carrying it, echoes it in `X-Request-Id`, writes one access-log line
//! and records the HTTP metrics. Bodies, query strings and headers other than the id are never
//! logged.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tracing::Instrument;

use crate::metrics::HttpMetrics;

/// The request id header, echoed on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: the caller's `X-Request-Id` when it is sane, else a UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(request_id_of(req)))
    }
}

/// The id the middleware assigned (a fresh one if the middleware did not run).
pub fn request_id_of(req: &HttpRequest) -> RequestId {
    req.extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(fresh_request_id()))
}

/// A new random (version 4) UUID for a request that came without an id. Drawn from the
/// thread's user-space generator: the ids need to be unique, not secret, and asking the
/// kernel for randomness on every request is a measurable cost at high request rates.
fn fresh_request_id() -> Arc<str> {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
        .into()
}

fn incoming_request_id(value: &HeaderValue) -> Option<Arc<str>> {
    let text = value.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte));
    sane.then(|| Arc::from(text))
}

/// The level of the access-log line of a successful request (add it to the app data; default
/// `info`). Services with very high request rates log successes at `debug` and keep their own
/// events at `info`; failures are always logged at `info` or above.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLevel(pub tracing::Level);

/// Paths probed constantly; logged at debug level only.
fn is_probe(path: &str) -> bool {
    path.starts_with("/health") || path == "/metrics" || path == "/v1/sys/health"
}

/// The middleware function; register it last so that it runs first. Expects
/// `web::Data<HttpMetrics>` in the app data.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(incoming_request_id)
        .unwrap_or_else(fresh_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = req.method().clone();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let quiet = is_probe(req.path())
        || req
            .app_data::<AccessLogLevel>()
            .is_some_and(|level| level.0 > tracing::Level::INFO);
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);

    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    if let Some(metrics) = metrics {
        let status_text = status.to_string();
        metrics
            .requests
            .with(&[&route, method.as_str(), &status_text])
            .inc();
        metrics.duration.with(&[&route]).observe(elapsed);
    }
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request completed");
        } else if quiet && status < 400 {
            tracing::debug!(status, elapsed_ms, "request completed");
        } else {
            tracing::info!(status, elapsed_ms, "request completed");
        }
    });
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}
