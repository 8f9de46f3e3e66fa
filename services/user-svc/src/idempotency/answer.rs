//! The answer of a mutating request, built the same way when it is first given and when a
//! stored one is replayed: the status, the body, and for a user its `ETag` (and `Location`
//! when created).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue, LOCATION};
use vottery_common::users::UserView;

use crate::routes::etag;

/// The response header that marks a replayed answer (`Idempotent-Replayed`).
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The body of a mutating request's answer.
#[derive(Debug)]
pub enum Reply {
    /// A user, as the change left it.
    User(Box<UserView>),
    /// A body without personal data (such as how many sessions ended).
    Json(serde_json::Value),
    /// No body.
    Empty,
}

impl Reply {
    /// The answer with `status`.
    pub fn respond(self, status: StatusCode) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        match self {
            Reply::User(view) => {
                if status == StatusCode::CREATED {
                    response.insert_header((LOCATION, format!("/api/users/{}", view.id)));
                }
                response.insert_header(etag(view.version)).json(*view)
            }
            Reply::Json(body) => response.json(body),
            Reply::Empty => response.finish(),
        }
    }

    /// A stored answer given again, marked as such.
    pub fn replay(self, status: StatusCode) -> HttpResponse {
        let mut response = self.respond(status);
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
        response
    }
}
