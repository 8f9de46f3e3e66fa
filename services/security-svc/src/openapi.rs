//! `/openapi.json` and the interactive documentation at `/docs/`.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(info(
    title = "security-svc",
    description = "Encryption as a service, wire-compatible with the Vault Transit API, sealed behind Shamir shares."
))]
pub struct ApiDoc;

async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(spec));
}
