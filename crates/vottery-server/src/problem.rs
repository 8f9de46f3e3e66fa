//! RFC 9457 responses for actix-web, and a JSON body extractor whose errors name the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use vottery_common::problem::{FieldError, PROBLEM_JSON, Problem};

use crate::observe::request_id_of;

/// A problem ready to be sent: the error type of handlers and extractors.
#[derive(Debug, Clone)]
pub struct ProblemResponse {
    pub problem: Box<Problem>,
    /// Seconds for `Retry-After` (503 and 429 answers).
    pub retry_after: Option<u64>,
}

impl ProblemResponse {
    pub fn new(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 422: the body or query is well-formed but some fields are wrong.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self::new(Problem::new("validation", "Invalid request", 422, detail).with_errors(errors))
    }

    /// 400: the body is not parseable at all.
    pub fn malformed(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(
            Problem::new(
                "malformed-request",
                "Malformed request",
                400,
                detail.clone(),
            )
            .with_errors(vec![FieldError::new("body", detail)]),
        )
    }

    /// Fills `instance` and `request_id` from the request.
    pub fn for_request(mut self, req: &HttpRequest) -> Self {
        self.problem.instance = Some(req.path().to_owned());
        self.problem.request_id = Some(request_id_of(req).as_str().to_owned());
        self
    }
}

impl std::fmt::Display for ProblemResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.problem.detail, self.problem.status)
    }
}

impl ResponseError for ProblemResponse {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(&self.problem, self.retry_after)
    }
}

/// Serialises a problem with its media type and optional `Retry-After`.
pub fn problem_response(problem: &Problem, retry_after: Option<u64>) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.insert_header((CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
    if let Some(seconds) = retry_after {
        response.insert_header(("Retry-After", seconds.to_string()));
    }
    response.body(serde_json::to_vec(problem).unwrap_or_default())
}

/// `[limits]`-style body size for [`JsonBody`]; add it to the app data.
#[derive(Debug, Clone, Copy)]
pub struct JsonBodyLimit(pub usize);

/// A JSON request body deserialised into `T`, with errors that name the offending field
/// (`profile.date_of_birth`), reject non-JSON content types (415) and oversized bodies (413).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|media| {
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })
}

/// The field path and message of a deserialisation error, as the client should read them.
pub fn describe_json_error(path: &str, error: &serde_json::Error) -> FieldError {
    let message = error.to_string();
    // serde_json appends " at line L column C"; the field path says more.
    let message = match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message,
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            let parent = path
                .rsplit_once('.')
                .map(|(parent, _)| parent)
                .unwrap_or("");
            if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}.{name}")
            }
        };
        return FieldError::new(field, "unknown field; it is not part of this request");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    FieldError::new(field, message)
}

/// Parses a JSON body, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProblemResponse> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProblemResponse::malformed(
            "the request body is empty; a JSON object is expected",
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ProblemResponse::malformed(format!("the body is not valid JSON: {inner}"))
        } else {
            ProblemResponse::validation(vec![describe_json_error(&path, &inner)])
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ProblemResponse;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ProblemResponse::new(
                    Problem::new(
                        "unsupported-media-type",
                        "Unsupported media type",
                        415,
                        "the request body must be JSON (Content-Type: application/json)",
                    )
                    .with_errors(vec![FieldError::new(
                        "Content-Type",
                        "must be application/json",
                    )]),
                )
                .for_request(&req));
            }
            let limit = req
                .app_data::<JsonBodyLimit>()
                .map_or(64 * 1024, |limit| limit.0);
            let too_large = || {
                ProblemResponse::new(
                    Problem::new(
                        "payload-too-large",
                        "Payload too large",
                        413,
                        format!("the request body is larger than {limit} bytes"),
                    )
                    .with_errors(vec![FieldError::new(
                        "body",
                        format!("at most {limit} bytes"),
                    )]),
                )
                .for_request(&req)
            };
            let declared = req
                .headers()
                .get(actix_web::http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<usize>().ok());
            if declared.is_some_and(|length| length > limit) {
                return Err(too_large());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ProblemResponse::malformed("the request body could not be read")
                        .for_request(&req)
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body)
                .map(JsonBody)
                .map_err(|problem| problem.for_request(&req))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        city: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        page: u32,
        profile: Option<Inner>,
    }

    fn field_of(json: &str) -> (u16, String) {
        let problem = parse_json::<Body>(json.as_bytes()).unwrap_err().problem;
        (problem.status, problem.errors[0].field.clone())
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"email":"a","page":1,"extra":1}"#),
            (422, "extra".into())
        );
        assert_eq!(field_of(r#"{"email":"a"}"#), (422, "page".into()));
        assert_eq!(
            field_of(r#"{"email":"a","page":"x"}"#),
            (422, "page".into())
        );
        assert_eq!(
            field_of(r#"{"email":"a","page":1,"profile":{"town":"x"}}"#),
            (422, "profile.town".into())
        );
        assert_eq!(
            field_of(r#"{"email":"a","page":1,"profile":{"city":3}}"#),
            (422, "profile.city".into())
        );
        assert_eq!(field_of(r#"{"email":"#), (400, "body".into()));
        assert_eq!(field_of(""), (400, "body".into()));
    }
}
