//! `/api/users`: create, read, list, change profile, status and role, delete, audit trail.

use actix_web::http::StatusCode;
use actix_web::http::header::LINK;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use vottery_common::problem::Problem;
use vottery_common::users::{
    AuditPage, CreateUser, PageQuery, ProfileUpdate, RoleUpdate, StatusUpdate, UserListQuery,
    UserPage, UserView,
};
use vottery_server::problem::{JsonBody, ProblemResponse};

use super::extract::{
    IdempotencyHeader, IdempotencyKeyParam, IfMatchParam, RequestContext, UserIdParam, UserIdPath,
};
use super::openapi::{BodyProblems, CommonProblems, TargetProblems};
use super::{audited, etag, if_match};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::idempotency::{self, Reply};
use crate::users::service;

type Body = Result<JsonBody<Value>, ProblemResponse>;

/// The top-level field names of a body: what a refused attempt tried to change (never values).
fn attempted_fields(body: &Body) -> Vec<String> {
    match body {
        Ok(JsonBody(Value::Object(fields))) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The JSON a body holds, if it parsed: what an idempotency key's fingerprint covers.
fn json_of(body: &Body) -> Option<&Value> {
    body.as_ref().ok().map(|JsonBody(json)| json)
}

/// A change to a stored user through `PUT /api/users/{id}/...`.
#[derive(Debug, Clone, Copy)]
enum UserChange {
    Profile,
    Status,
    Role,
}

impl UserChange {
    /// The audit action of the change.
    fn action(self) -> &'static str {
        match self {
            UserChange::Profile => "user.update_profile",
            UserChange::Status => "user.update_status",
            UserChange::Role => "user.update_role",
        }
    }
}

/// Makes a change to the user at `path` (auditing it if refused) and answers with the user and
/// its `ETag`, under the request's idempotency key.
async fn change_user(
    change: UserChange,
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = request.ctx();
    let fields = attempted_fields(&body);
    let keyed = key.keyed(json_of(&body))?;
    idempotency::respond(&ctx, keyed, StatusCode::OK, async |answer| {
        let view = audited(&ctx, change.action(), path.audit_target(), fields, async {
            let (id, body, if_match) = (path.id()?, body?.0, if_match(&req)?);
            let ctx = &ctx;
            match change {
                UserChange::Profile => {
                    service::update_profile(ctx, id, body, if_match, answer).await
                }
                UserChange::Status => service::update_status(ctx, id, body, if_match, answer).await,
                UserChange::Role => service::update_role(ctx, id, body, if_match, answer).await,
            }
        })
        .await?;
        Ok(Reply::User(Box::new(view)))
    })
    .await
}

/// Creates a user (service token, or admin and above).
#[utoipa::path(
    post, path = "/api/users", tag = "users", operation_id = "create_user",
    params(IdempotencyKeyParam),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created, with `Location` and `ETag`", body = UserView,
            headers(("Location" = String, description = "The new user's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "Email or phone already registered", content_type = "application/problem+json", body = Problem),
        BodyProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn create(
    request: RequestContext,
    key: IdempotencyHeader,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = request.ctx();
    let fields = attempted_fields(&body);
    let keyed = key.keyed(json_of(&body))?;
    idempotency::respond_claiming_in_change(&ctx, keyed, StatusCode::CREATED, async |answer| {
        let view = audited(&ctx, "user.create", None, fields, async {
            service::create(&ctx, body?.0, answer).await
        })
        .await?;
        Ok(Reply::User(Box::new(view)))
    })
    .await
}

/// Lists users in id order, a page at a time by page number or by cursor, filtered by indexed
/// columns (any admin role, or a service).
#[utoipa::path(
    get, path = "/api/users", tag = "users", operation_id = "list_users",
    params(UserListQuery),
    responses(
        (status = 200, description = "One page of users, the total (exact or estimated, see `total_kind`) and the cursors beside it", body = UserPage,
            headers(("Link" = String, description = "RFC 8288 links to the pages beside this one: `rel=\"next\"` (`after=`) and `rel=\"prev\"` (`before=`), with the same filters and limit"))),
        (status = 422, description = "Invalid, unknown, repeated or conflicting query parameters (`after` with `before` or `page`, a cursor of other filters, a page deeper than 10,000 rows), each named in `errors`", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn list(request: RequestContext, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let ctx = request.ctx();
    let page = service::list(&ctx, req.query_string()).await?;
    let mut response = HttpResponse::Ok();
    if let Some(links) = page_links(&req, &page) {
        response.insert_header((LINK, links));
    }
    Ok(response.json(page))
}

/// The `Link` header of a list page (RFC 8288): the request's own path and parameters, its
/// position replaced by the next and previous cursors.
fn page_links(req: &HttpRequest, page: &UserPage) -> Option<String> {
    let kept: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && !matches!(name, "page" | "after" | "before")
        })
        .collect();
    let link = |name: &str, cursor: &str, rel: &str| {
        let mut query = kept.clone();
        let position = format!("{name}={cursor}");
        query.push(&position);
        format!("<{}?{}>; rel=\"{rel}\"", req.path(), query.join("&"))
    };
    let links: Vec<String> = [
        page.next_cursor
            .as_deref()
            .map(|c| link("after", c, "next")),
        page.prev_cursor
            .as_deref()
            .map(|c| link("before", c, "prev")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!links.is_empty()).then(|| links.join(", "))
}

/// The caller's own user.
#[utoipa::path(
    get, path = "/api/users/me", tag = "users", operation_id = "get_me",
    responses(
        (status = 200, description = "The caller's user, with `ETag` and its signature check", body = UserView, headers(("ETag" = String, description = "The version"))),
        CommonProblems,
    ),
    security(("bearer" = []))
)]
pub async fn me(request: RequestContext) -> Result<HttpResponse, ApiError> {
    let &Principal::User(id) = request.principal() else {
        return Err(ApiError::Forbidden(
            "/api/users/me is for user tokens; a service token has no account".into(),
        ));
    };
    let ctx = request.ctx();
    let view = service::get(&ctx, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// One user (oneself, or any admin role; low ranks see contacts masked).
#[utoipa::path(
    get, path = "/api/users/{id}", tag = "users", operation_id = "get_user",
    params(UserIdParam),
    responses(
        (status = 200, description = "The user, with `ETag` and its signature check", body = UserView, headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such user", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn get(request: RequestContext, path: UserIdPath) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let ctx = request.ctx();
    let view = service::get(&ctx, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// Changes profile fields (oneself, or moderator and above on lower ranks).
#[utoipa::path(
    put, path = "/api/users/{id}/profile", tag = "users", operation_id = "update_profile",
    params(UserIdParam, IfMatchParam, IdempotencyKeyParam),
    request_body(content = ProfileUpdate, description = "Only the fields present change; `null` clears one. The Sngine names `user_gender`, `user_country`, `user_birthdate` are accepted too."),
    responses(
        (status = 200, description = "The updated user", body = UserView, headers(("ETag" = String, description = "The version"))),
        (status = 409, description = "The stored record fails its integrity check", content_type = "application/problem+json", body = Problem),
        TargetProblems,
        BodyProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn profile(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    change_user(UserChange::Profile, request, path, req, key, body).await
}

/// Moves a user through the lifecycle.
#[utoipa::path(
    put, path = "/api/users/{id}/status", tag = "users", operation_id = "update_status",
    params(UserIdParam, IfMatchParam, IdempotencyKeyParam),
    request_body = StatusUpdate,
    responses(
        (status = 200, description = "The updated user", body = UserView, headers(("ETag" = String, description = "The version"))),
        (status = 409, description = "Not an allowed move; `allowed_transitions` lists them", content_type = "application/problem+json", body = Problem),
        TargetProblems,
        BodyProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn status(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    change_user(UserChange::Status, request, path, req, key, body).await
}

/// Changes user type, admin role and subscription (admin and above, on lower ranks).
#[utoipa::path(
    put, path = "/api/users/{id}/role", tag = "users", operation_id = "update_role",
    params(UserIdParam, IfMatchParam, IdempotencyKeyParam),
    request_body(content = RoleUpdate, description = "Only the fields present change; `\"admin_role\": null` revokes."),
    responses(
        (status = 200, description = "The updated user", body = UserView, headers(("ETag" = String, description = "The version"))),
        (status = 409, description = "The last manager cannot be demoted", content_type = "application/problem+json", body = Problem),
        TargetProblems,
        BodyProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn role(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    change_user(UserChange::Role, request, path, req, key, body).await
}

/// Deletes a user (managers only); the audit trail is kept.
#[utoipa::path(
    delete, path = "/api/users/{id}", tag = "users", operation_id = "delete_user",
    params(UserIdParam, IfMatchParam, IdempotencyKeyParam),
    responses(
        (status = 204, description = "Deleted; the audit trail is kept"),
        (status = 409, description = "The last manager cannot be deleted, or the `Idempotency-Key`'s first request is still running", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`id` is not a positive whole number, or the `Idempotency-Key` is malformed or was used for another request", content_type = "application/problem+json", body = Problem),
        TargetProblems,
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn delete(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let ctx = request.ctx();
    let target = path.audit_target();
    let keyed = key.keyed(None)?;
    idempotency::respond(&ctx, keyed, StatusCode::NO_CONTENT, async |answer| {
        audited(&ctx, "user.delete", target, Vec::new(), async {
            service::delete(&ctx, path.id()?, if_match(&req)?, answer).await
        })
        .await?;
        Ok(Reply::Empty)
    })
    .await
}

/// A user's audit trail, newest first, with the check of its hash chain (auditor and above).
#[utoipa::path(
    get, path = "/api/users/{id}/audit", tag = "users", operation_id = "get_audit_trail",
    params(UserIdParam, PageQuery),
    responses(
        (status = 200, description = "One page of the trail and the check of its hash chain", body = AuditPage),
        (status = 404, description = "No such user and no trail", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Invalid or unknown query parameters", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn audit(
    request: RequestContext,
    path: UserIdPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let ctx = request.ctx();
    let page = service::audit_trail(&ctx, id, req.query_string()).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/users")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/api/users/me").route(web::get().to(me)))
    .service(
        web::resource("/api/users/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/api/users/{id}/profile").route(web::put().to(profile)))
    .service(web::resource("/api/users/{id}/status").route(web::put().to(status)))
    .service(web::resource("/api/users/{id}/role").route(web::put().to(role)))
    .service(web::resource("/api/users/{id}/audit").route(web::get().to(audit)));
}
