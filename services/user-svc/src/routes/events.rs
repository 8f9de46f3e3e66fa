//! `/api/events`: the pull feed of user events, for consumers without NATS.

use actix_web::{HttpRequest, HttpResponse, web};
use vottery_common::events::{EventPage, EventQuery};
use vottery_common::problem::Problem;

use super::extract::RequestContext;
use super::openapi::CommonProblems;
use crate::error::ApiError;
use crate::users::service;

/// User events as CloudEvents, in commit order, after a cursor. Services, and auditor and
/// above. An event appears once every transaction that was running before it has ended, so
/// paging with `next` never skips one.
#[utoipa::path(
    get, path = "/api/events", tag = "events", operation_id = "list_events",
    params(EventQuery),
    responses(
        (status = 200, description = "The events after the cursor, and the cursor to ask after next", body = EventPage),
        (status = 422, description = "`after` is not a cursor of this feed, `limit` is out of range, or a parameter is unknown", content_type = "application/problem+json", body = Problem),
        CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn events(request: RequestContext, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let page = service::events(&request.ctx(), req.query_string()).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/events", web::get().to(events));
}
