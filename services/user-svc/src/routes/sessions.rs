//! `/api/users/{id}/devices` and `/api/users/{id}/sessions`: a user's devices and sessions,
//! read and ended. `{id}` may be `me`, the caller's own account.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vottery_common::problem::Problem;
use vottery_common::sessions::{DevicePage, SessionPage, SessionsEnded};
use vottery_common::users::PageQuery;

use super::audited;
use super::extract::{
    IdempotencyHeader, IdempotencyKeyParam, RequestContext, SessionIdPath, SessionParams,
    UserIdOrMeParam, UserIdPath,
};
use super::openapi::CommonProblems;
use crate::error::ApiError;
use crate::idempotency::{self, Reply};
use crate::users::service;

/// A user's devices, active and most recently used first, each with the biometrics enrolled on
/// it (type and dates only). Oneself, moderator and above on lower ranks, or a service.
#[utoipa::path(
    get, path = "/api/users/{id}/devices", tag = "sessions", operation_id = "list_devices",
    params(UserIdOrMeParam, PageQuery),
    responses(
        (status = 200, description = "One page of devices and the total", body = DevicePage),
        (status = 404, description = "No such user", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number or `me`, or the query parameters are invalid", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn devices(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.or_me(request.principal())?;
    let page = service::devices(&request.ctx(), id, req.query_string()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A user's sessions, active first and then the newest; never their tokens. Oneself, moderator
/// and above on lower ranks, or a service.
#[utoipa::path(
    get, path = "/api/users/{id}/sessions", tag = "sessions", operation_id = "list_sessions",
    params(UserIdOrMeParam, PageQuery),
    responses(
        (status = 200, description = "One page of sessions and the total", body = SessionPage),
        (status = 404, description = "No such user", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number or `me`, or the query parameters are invalid", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn sessions(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.or_me(request.principal())?;
    let page = service::sessions(&request.ctx(), id, req.query_string()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Ends one session (`is_active = false`); ending an ended session succeeds alike. Oneself, or
/// moderator and above on lower ranks; audited as `session.end`.
#[utoipa::path(
    delete, path = "/api/users/{id}/sessions/{session_id}", tag = "sessions", operation_id = "end_session",
    params(SessionParams, IdempotencyKeyParam),
    responses(
        (status = 204, description = "The session is ended"),
        (status = 404, description = "No such user, or the user has no such session", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "The `Idempotency-Key`'s first request is still running", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` or `session_id` is not a positive whole number, or the `Idempotency-Key` is malformed or was used for another request", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []))
)]
pub async fn end_session(
    request: RequestContext,
    path: UserIdPath,
    session: SessionIdPath,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let (ctx, principal) = (request.ctx(), request.principal());
    let target = path.audit_target_or_me(principal);
    let keyed = key.keyed(None)?;
    idempotency::respond(&ctx, keyed, StatusCode::NO_CONTENT, async |answer| {
        audited(&ctx, "session.end", target, Vec::new(), async {
            let (id, session_id) = (path.or_me(principal)?, session.id()?);
            service::end_session(&ctx, id, session_id, answer).await
        })
        .await?;
        Ok(Reply::Empty)
    })
    .await
}

/// Ends all of a user's active sessions. Oneself, or moderator and above on lower ranks;
/// audited as `sessions.end` with the count.
#[utoipa::path(
    delete, path = "/api/users/{id}/sessions", tag = "sessions", operation_id = "end_sessions",
    params(UserIdOrMeParam, IdempotencyKeyParam),
    responses(
        (status = 200, description = "How many active sessions were ended (0 when none was)", body = SessionsEnded),
        (status = 404, description = "No such user", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "The `Idempotency-Key`'s first request is still running", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number or `me`, or the `Idempotency-Key` is malformed or was used for another request", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []))
)]
pub async fn end_sessions(
    request: RequestContext,
    path: UserIdPath,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let (ctx, principal) = (request.ctx(), request.principal());
    let target = path.audit_target_or_me(principal);
    let keyed = key.keyed(None)?;
    idempotency::respond(&ctx, keyed, StatusCode::OK, async |answer| {
        let ended = audited(&ctx, "sessions.end", target, Vec::new(), async {
            service::end_sessions(&ctx, path.or_me(principal)?, answer).await
        })
        .await?;
        Ok(Reply::Json(serde_json::json!(ended)))
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/users/{id}/devices").route(web::get().to(devices)))
        .service(
            web::resource("/api/users/{id}/sessions")
                .route(web::get().to(sessions))
                .route(web::delete().to(end_sessions)),
        )
        .service(
            web::resource("/api/users/{id}/sessions/{session_id}")
                .route(web::delete().to(end_session)),
        );
}
