//! `/api/users/{id}/export`: everything held about a user, as one JSON document served as an
//! attachment. `{id}` may be `me`.

use actix_web::http::header::{
    CONTENT_DISPOSITION, ContentDisposition, DispositionParam, DispositionType,
};
use actix_web::{HttpResponse, web};
use vottery_common::export::UserExport;
use vottery_common::problem::Problem;

use super::audited;
use super::extract::{RequestContext, UserIdOrMeParam, UserIdPath};
use super::openapi::CommonProblems;
use crate::error::ApiError;
use crate::users::export_body;
use crate::users::service;

/// Everything held about a user (GDPR articles 15 and 20): the profile in clear with its
/// signature check, devices, sessions (never their tokens), biometrics (type, device and dates
/// only) and every audit row about the user, oldest first, with the check of its hash chain.
/// Oneself, or a manager; audited as `user.export`. The trail is streamed: a failure after the
/// answer started drops the connection before the body's end, so a document that parses is
/// complete.
#[utoipa::path(
    get, path = "/api/users/{id}/export", tag = "users", operation_id = "export_user",
    params(UserIdOrMeParam),
    responses(
        (status = 200, description = "The export, as an attachment named `user-<id>-export.json`", body = UserExport,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"user-<id>-export.json\"`"))),
        (status = 404, description = "No such user", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number or `me`", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []))
)]
pub async fn export(request: RequestContext, path: UserIdPath) -> Result<HttpResponse, ApiError> {
    let (ctx, principal) = (request.ctx(), request.principal());
    let target = path.audit_target_or_me(principal);
    let document = audited(&ctx, "user.export", target, Vec::new(), async {
        service::export(&ctx, path.or_me(principal)?).await
    })
    .await?;
    let attachment = attachment(document.head.user_id);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((CONTENT_DISPOSITION, attachment))
        .streaming(export_body::body(document)))
}

/// `attachment; filename="user-<id>-export.json"`.
fn attachment(user_id: i32) -> ContentDisposition {
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(format!(
            "user-{user_id}-export.json"
        ))],
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/users/{id}/export").route(web::get().to(export)));
}
