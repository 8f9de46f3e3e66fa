//! HTTP routes: thin handlers that extract, call one use case and answer.

pub mod erase;
pub mod events;
pub mod export;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod roles;
pub mod sessions;
pub mod users;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::audit::RequestMeta;
use crate::error::ApiError;
use crate::ratelimit::ClientAddr;
use crate::users::service::Ctx;

impl FromRequest for RequestMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ip = req
            .extensions()
            .get::<ClientAddr>()
            .and_then(|addr| addr.0)
            .map(ipnet::IpNet::from);
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|text| text.chars().take(512).collect());
        ready(Ok(RequestMeta {
            request_id: vottery_server::observe::request_id_of(req)
                .as_str()
                .to_owned(),
            ip,
            user_agent,
        }))
    }
}

/// The version an `If-Match` header names: `"3"`, `W/"3"`; `*` or no header means any.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            ApiError::field(
                "If-Match",
                "must be an ETag returned by this API, such as \"3\"",
            )
        })
}

/// The `ETag` of a version.
pub fn etag(version: i64) -> (actix_web::http::header::HeaderName, String) {
    (actix_web::http::header::ETAG, format!("\"{version}\""))
}

/// Runs a mutation and audits it if refused.
pub async fn audited<T>(
    ctx: &Ctx<'_>,
    action: &str,
    target: Option<i32>,
    fields: Vec<String>,
    run: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let result = run.await;
    if let Err(error) = &result
        && error.is_audited_refusal()
    {
        ctx.audit_refusal(action, target, fields, error).await;
    }
    result
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    users::configure(cfg);
    erase::configure(cfg);
    sessions::configure(cfg);
    export::configure(cfg);
    events::configure(cfg);
    roles::configure(cfg);
    health::configure(cfg);
    openapi::configure(cfg);
}
