//! What both services serve around their OpenAPI documents: Swagger UI at `/docs/` over the
//! document at `/openapi.json`, and the document's checked-in form; and what their tests check
//! of it ([`conformance`]).

pub mod conformance;

use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The document as checked in: pretty-printed, object keys sorted, ending in a newline.
pub fn pretty_json(document: OpenApi) -> serde_json::Result<String> {
    let value = serde_json::to_value(document)?;
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// Swagger UI at `/docs/` over `/openapi.json`; `/docs` leads there.
pub fn docs_page(cfg: &mut web::ServiceConfig) {
    cfg.route("/docs", web::get().to(to_docs))
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new(["/openapi.json"])));
}

async fn to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}
