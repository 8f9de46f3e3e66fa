//! The OpenAPI document of user-svc, served at `/openapi.json`, with the interactive
//! documentation (a vendored Swagger UI, no CDN) at `/docs/`.
//!
//! The document is checked in as `services/user-svc/openapi.json`; the `openapi` tests fail when
//! it drifts and `UPDATE_OPENAPI=1 cargo test -p user-svc --test api openapi` rewrites it.

use actix_web::{HttpResponse, web};
use utoipa::openapi::schema::{AdditionalProperties, AllOf, Object};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};
use vottery_common::problem::Problem;

use super::{erase, events, export, health, roles, sessions, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-svc",
        description = "Users, profiles and roles of the Vottery platform, with encrypted PII, signed records and a hash-chained audit trail.\n\nErrors are RFC 9457 `application/problem+json` with a stable `type`, a human `detail` and `errors[]` naming each bad field. Reads carry an `ETag`; writes honour `If-Match` (412 when the record moved on). Every response carries `X-Request-Id`."
    ),
    paths(
        users::create, users::list, users::me, users::get, users::profile, users::status,
        users::role, users::delete, erase::erase, users::audit, export::export, sessions::devices, sessions::sessions,
        sessions::end_session, sessions::end_sessions, events::events, roles::roles, vottery_server::health::routes::live,
        health::ready, health::metrics, spec
    ),
    tags(
        (name = "users", description = "Users and their profiles, status, roles and audit trail, and the export of everything held about a user."),
        (name = "sessions", description = "A user's devices and sessions, as the auth- and biometric-services recorded them, without tokens or biometric secrets; `{id}` may be `me`."),
        (name = "events", description = "User events (CloudEvents 1.0) in commit order: ids, field names and transitions, never personal values. The same events NATS JetStream carries when the relay is on."),
        (name = "roles", description = "The admin hierarchy and its rules."),
        (name = "operations", description = "Health, metrics and this document."),
    ),
    modifiers(&BearerAuth, &RequestBodyRules)
)]
pub struct ApiDoc;

/// The problems every `/api` route may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum CommonProblems {
    /// No token, or a token that does not validate.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller's role does not allow this, or the caller is suspended.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Too many requests from this address or user; with `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Problem),
    /// An unexpected failure; the cause is logged, not returned.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The database or security-svc is unavailable; nothing was written. With `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems every route with a JSON body may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum BodyProblems {
    /// The body is not well-formed JSON
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// The body is larger than the limit
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not JSON
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
    /// Invalid or unknown fields, each named in `errors`
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// The problems every write to an existing user may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum TargetProblems {
    /// No such user
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// `If-Match` names an older version
    #[response(status = 412, content_type = "application/problem+json")]
    Stale(Problem),
}

/// The schemes the paths refer to: the auth-service's JWT (`bearer`) or a service token
/// (`service_token`), both sent as `Authorization: Bearer`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's JWT from the auth-service; the user id is read from the configured claim.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A configured service token (the auth-service creating and looking up users).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as checked in: pretty-printed, object keys sorted, ending in a newline.
pub fn to_pretty_json() -> serde_json::Result<String> {
    vottery_server::openapi::pretty_json(ApiDoc::openapi())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(spec));
    vottery_server::openapi::docs_page(cfg);
}

/// What the request bodies' derived schemas do not say: the change bodies that are refused when
/// empty (stated here because utoipa-gen 5.5 writes a struct's `min_properties` as
/// `maxProperties`), and that every body refuses fields it does not name. `CreateUser` is written
/// out flat (the profile's fields beside its own): with `allOf`, each part's closed object would
/// refuse the other part's fields.
struct RequestBodyRules;

/// The bodies whose schemas are objects of their own.
const CLOSED_BODIES: [&str; 3] = ["ProfileUpdate", "RoleUpdate", "StatusUpdate"];

impl Modify for RequestBodyRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let schemas = &mut components.schemas;
        for name in CLOSED_BODIES {
            if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(name) {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
                if name != "StatusUpdate" {
                    object.min_properties = Some(1);
                }
            }
        }
        let flat = match (schemas.get("ProfileUpdate"), schemas.get("CreateUser")) {
            (Some(RefOr::T(Schema::Object(profile))), Some(RefOr::T(Schema::AllOf(create)))) => {
                flat_create_user(profile, create)
            }
            _ => None,
        };
        if let Some(flat) = flat {
            schemas.insert("CreateUser".into(), RefOr::T(Schema::Object(flat)));
        }
    }
}

/// `CreateUser` as one closed object: the profile's fields and its own.
fn flat_create_user(profile: &Object, create: &AllOf) -> Option<Object> {
    let own = create.items.iter().find_map(|item| match item {
        RefOr::T(Schema::Object(own)) => Some(own),
        _ => None,
    })?;
    let mut flat = profile.clone();
    flat.min_properties = None;
    flat.description.clone_from(&create.description);
    flat.properties.extend(own.properties.clone());
    flat.required.clone_from(&own.required);
    Some(flat)
}
