//! `POST /api/users/{id}/erase`: erasure by crypto-shredding.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vottery_common::problem::Problem;

use super::extract::{
    IdempotencyHeader, IdempotencyKeyParam, IfMatchParam, RequestContext, UserIdParam, UserIdPath,
};
use super::openapi::{CommonProblems, TargetProblems};
use super::{audited, if_match};
use crate::error::ApiError;
use crate::idempotency::{self, Reply};
use crate::users::service;

/// Erases a user (GDPR article 17): destroys their PII key in security-svc, so that every copy
/// of their encrypted PII (replicas, dumps, backups) is unreadable for good, then deletes them
/// as `DELETE` does. A manager (not on their own account), or a service acting on the user's
/// verified request. The audit trail, which holds no PII, is kept and records the erasure.
/// Retrying an interrupted erasure completes it; an erased user is 404.
#[utoipa::path(
    post, path = "/api/users/{id}/erase", tag = "users", operation_id = "erase_user",
    params(UserIdParam, IfMatchParam, IdempotencyKeyParam),
    responses(
        (status = 204, description = "Erased: the PII key is destroyed and the user deleted; the audit trail is kept"),
        (status = 409, description = "The last manager, or a user whose PII is not yet under a key of their own (run `encrypt-existing` and `rewrap` first), or the `Idempotency-Key`'s first request is still running", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number, or the `Idempotency-Key` is malformed or was used for another request", content_type = "application/problem+json", body = Problem),
        TargetProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn erase(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let ctx = request.ctx();
    let keyed = key.keyed(None)?;
    idempotency::respond(&ctx, keyed, StatusCode::NO_CONTENT, async |answer| {
        audited(
            &ctx,
            service::ERASE_ACTION,
            path.audit_target(),
            Vec::new(),
            async { service::erase(&ctx, path.id()?, if_match(&req)?, answer).await },
        )
        .await?;
        Ok(Reply::Empty)
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/users/{id}/erase", web::post().to(erase));
}
