//! `/openapi.json` and the interactive documentation at `/docs/`.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{health, roles, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-svc",
        description = "Users, profiles and roles of the Vottery platform, with encrypted PII, signed records and a hash-chained audit trail. Errors are RFC 9457 `application/problem+json`."
    ),
    paths(
        users::create, users::list, users::me, users::get, users::profile, users::status,
        users::role, users::delete, users::audit, roles::roles, health::live, health::ready,
        health::metrics
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The `bearer` scheme the paths refer to: the auth-service's JWT or a service token.
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
                    .build(),
            ),
        );
    }
}

async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(spec))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/docs/openapi.json", ApiDoc::openapi()));
}
