//! `/api/users`: create, read, list, change profile, status and role, delete, audit trail.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use vottery_server::problem::{JsonBody, ProblemResponse};

use super::{etag, if_match};
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::users::service::{self, Ctx};

type Body = Result<JsonBody<Value>, ProblemResponse>;

/// The top-level field names of a body: what a refused attempt tried to change (never values).
fn attempted_fields(body: &Body) -> Vec<String> {
    match body {
        Ok(JsonBody(Value::Object(fields))) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Runs a mutation and audits it if refused.
async fn audited<T>(
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

fn user_id(path: &str) -> Result<i32, ApiError> {
    path.parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field("id", "must be a positive whole number"))
}

/// Creates a user (service token, or admin and above).
#[utoipa::path(
    post, path = "/api/users", tag = "users",
    request_body(content = Object, content_type = "application/json", description = "sngine_email, sngine_phone, optional user_type, subscription_status and profile fields"),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` headers", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 409, description = "Email or phone already registered", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", content_type = "application/problem+json"),
        (status = 503, description = "security-svc unavailable; nothing written", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let fields = attempted_fields(&body);
    let view = audited(&ctx, "user.create", None, fields, async {
        service::create(&ctx, body?.0).await
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/api/users/{}", view.id)))
        .insert_header(etag(view.version))
        .json(view))
}

/// Lists users, paged, filtered by indexed columns (any admin role, or a service).
#[utoipa::path(
    get, path = "/api/users", tag = "users",
    params(
        ("page" = Option<u32>, Query, description = "From 1"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("status" = Option<String>, Query), ("user_type" = Option<String>, Query),
        ("admin_role" = Option<String>, Query), ("subscription_status" = Option<String>, Query),
        ("country" = Option<String>, Query), ("email" = Option<String>, Query, description = "Exact match")
    ),
    responses(
        (status = 200, description = "`{data, page, limit, total}`", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let page = service::list(&ctx, req.query_string()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The caller's own user.
#[utoipa::path(
    get, path = "/api/users/me", tag = "users",
    responses((status = 200, description = "The user, with `ETag`", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn me(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    let Principal::User(id) = principal else {
        return Err(ApiError::Forbidden(
            "/api/users/me is for user tokens; a service token has no account".into(),
        ));
    };
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let view = service::get(&ctx, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// One user (oneself, or any admin role; low ranks see contacts masked).
#[utoipa::path(
    get, path = "/api/users/{id}", tag = "users",
    params(("id" = i32, Path)),
    responses((status = 200, description = "The user, with `ETag` and its signature check", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 404, description = "No such user", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let view = service::get(&ctx, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// Changes profile fields (oneself, or moderator and above on lower ranks).
#[utoipa::path(
    put, path = "/api/users/{id}/profile", tag = "users",
    params(("id" = i32, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, content_type = "application/json", description = "Profile fields; the Sngine names user_gender, user_country, user_birthdate are accepted"),
    responses((status = 200, description = "The updated user", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 409, description = "The stored record fails its integrity check", content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names an older version", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn profile(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let fields = attempted_fields(&body);
    let target = path.parse::<i32>().ok();
    let view = audited(&ctx, "user.update_profile", target, fields, async {
        service::update_profile(&ctx, user_id(&path)?, body?.0, if_match(&req)?).await
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// Moves a user through the lifecycle.
#[utoipa::path(
    put, path = "/api/users/{id}/status", tag = "users",
    params(("id" = i32, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, content_type = "application/json", description = "`{\"status\": ...}`"),
    responses((status = 200, description = "The updated user", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 409, description = "Not an allowed move; `allowed_transitions` lists them", content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names an older version", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn status(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let fields = attempted_fields(&body);
    let target = path.parse::<i32>().ok();
    let view = audited(&ctx, "user.update_status", target, fields, async {
        service::update_status(&ctx, user_id(&path)?, body?.0, if_match(&req)?).await
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// Changes user type, admin role and subscription (admin and above, on lower ranks).
#[utoipa::path(
    put, path = "/api/users/{id}/role", tag = "users",
    params(("id" = i32, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, content_type = "application/json", description = "user_type, admin_role (null revokes), subscription_status, subscription_plan, subscription_expires_at"),
    responses((status = 200, description = "The updated user", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 409, description = "The last manager cannot be demoted", content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names an older version", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn role(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let fields = attempted_fields(&body);
    let target = path.parse::<i32>().ok();
    let view = audited(&ctx, "user.update_role", target, fields, async {
        service::update_role(&ctx, user_id(&path)?, body?.0, if_match(&req)?).await
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(view))
}

/// Deletes a user (managers only); the audit trail is kept.
#[utoipa::path(
    delete, path = "/api/users/{id}", tag = "users",
    params(("id" = i32, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 404, description = "No such user", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let target = path.parse::<i32>().ok();
    audited(&ctx, "user.delete", target, Vec::new(), async {
        service::delete(&ctx, user_id(&path)?, if_match(&req)?).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's audit trail, newest first, with the check of its hash chain (auditor and above).
#[utoipa::path(
    get, path = "/api/users/{id}/audit", tag = "users",
    params(("id" = i32, Path), ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "`{data, page, limit, total, chain}`", body = Object),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this caller's role", content_type = "application/problem+json"),
        (status = 404, description = "No such user and no trail", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn audit(
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let ctx = Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
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
