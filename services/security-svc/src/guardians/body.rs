//! The guardian routes' JSON body: read up to the instance's body limit and parsed once, with
//! errors that name the field. Fields that are not part of the request answer 422; values that
//! do not parse (hex that is no number, a number not below p or q, a wrong type) answer 400.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use vottery_server::problem::describe_json_error;

use super::error::GuardianError;
use crate::routes::body::{Unread, read_bounded};

/// A request body of type `T`.
pub struct GuardianBody<T>(pub T);

fn declares_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .is_some_and(|media| {
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GuardianError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GuardianError::Malformed(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return GuardianError::Malformed(format!("the body is not valid JSON: {inner}"));
        }
        let field = describe_json_error(&path, &inner);
        if inner.to_string().starts_with("unknown field") {
            GuardianError::UnknownFields(vec![field])
        } else {
            GuardianError::invalid_fields(vec![field])
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for GuardianBody<T> {
    type Error = GuardianError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = declares_json(req);
        let body = read_bounded(req, payload);
        Box::pin(async move {
            if !json {
                return Err(GuardianError::NotJson);
            }
            let body = body.await.map_err(|unread| match unread {
                Unread::TooLarge(limit) => GuardianError::TooLarge(limit),
                Unread::Broken => {
                    GuardianError::Malformed("the request body could not be read".into())
                }
            })?;
            parse(&body).map(GuardianBody)
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
    struct Item {
        pad: u8,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }

    fn refusal(json: &str) -> (u16, String) {
        let error = parse::<Body>(json.as_bytes()).unwrap_err();
        let status = error.status().as_u16();
        let problem = error.to_problem().problem;
        (status, problem.errors[0].field.clone())
    }

    #[test]
    fn values_that_do_not_parse_are_400_and_unknown_fields_422() {
        assert_eq!(
            refusal(r#"{"items":[{"pad":1},{"pad":300}]}"#),
            (400, "items[1].pad".into())
        );
        assert_eq!(
            refusal(r#"{"items":[{"pad":1,"extra":2}]}"#),
            (422, "items[0].extra".into())
        );
        assert_eq!(refusal(r#"{}"#), (400, "items".into()));
        assert_eq!(refusal(r#"{"items":"#), (400, "body".into()));
    }
}
