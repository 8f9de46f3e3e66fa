//! The `Idempotency-Key` header: a structured-field string (RFC 8941 sf-string) that names one
//! intended change, and the fingerprint of the request it came with, which tells a retry of
//! that request from a different request reusing the key.

use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use ring::digest;
use vottery_common::problem::FieldError;

use crate::error::ApiError;

/// The request header that carries the key.
pub const HEADER: &str = "Idempotency-Key";

/// The longest key accepted, in characters.
pub const MAX_KEY_LENGTH: usize = 255;

/// A valid key: the content of the sf-string, 1 to [`MAX_KEY_LENGTH`] printable ASCII
/// characters. A key sent bare (unquoted, as many clients send a UUID) reads as the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value (422 naming the header when it is not a valid key).
    pub fn parse(value: &HeaderValue) -> Result<Self, ApiError> {
        let text = value
            .to_str()
            .map_err(|_| invalid_key("must be printable ASCII"))?
            .trim();
        let key = match text.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None if text.bytes().all(is_bare) => text.to_owned(),
            None => {
                return Err(invalid_key(
                    "must be a quoted string (\"...\") or a key without spaces, quotes or backslashes",
                ));
            }
        };
        if key.is_empty() {
            return Err(invalid_key("must not be empty"));
        }
        if key.len() > MAX_KEY_LENGTH {
            return Err(invalid_key(format!(
                "must be at most {MAX_KEY_LENGTH} characters"
            )));
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The content of an sf-string after its opening quote: `\"` and `\\` escapes, printable
/// ASCII, and the closing quote last.
fn unquote(quoted: &str) -> Result<String, ApiError> {
    let mut key = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.as_str().is_empty() => return Ok(key),
            '"' => return Err(invalid_key("has text after its closing quote")),
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => key.push(escaped),
                _ => return Err(invalid_key("may escape only \" and \\ with a backslash")),
            },
            ' '..='~' => key.push(c),
            _ => return Err(invalid_key("must be printable ASCII")),
        }
    }
    Err(invalid_key("has no closing quote"))
}

/// A character a bare key may hold: visible ASCII but the quote and the backslash.
fn is_bare(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'"' && byte != b'\\'
}

/// The 422 for a key that is not valid, naming the header.
pub fn invalid_key(message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(HEADER, message)])
}

/// SHA-256 of a request's method, path and JSON body (re-serialised, so the keys' order and
/// the whitespace do not count): equal for a retry, different for another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(method: &Method, path: &str, body: Option<&serde_json::Value>) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(method.as_str().as_bytes());
        context.update(b"\n");
        context.update(path.as_bytes());
        context.update(b"\n");
        if let Some(body) = body {
            context.update(body.to_string().as_bytes());
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(context.finish().as_ref());
        Self(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<String, Vec<String>> {
        IdempotencyKey::parse(&HeaderValue::from_str(text).unwrap())
            .map(|key| key.0)
            .map_err(|error| match error {
                ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
                other => vec![other.to_string()],
            })
    }

    #[test]
    fn quoted_and_bare_keys_read_alike() {
        assert_eq!(parse("\"8e03978e-40d5\"").unwrap(), "8e03978e-40d5");
        assert_eq!(parse("8e03978e-40d5").unwrap(), "8e03978e-40d5");
        assert_eq!(
            parse(r#""a \"quoted\" \\ key""#).unwrap(),
            r#"a "quoted" \ key"#
        );
        assert_eq!(parse(&"k".repeat(255)).unwrap().len(), 255);
    }

    #[test]
    fn empty_long_and_malformed_keys_are_refused_naming_the_header() {
        for bad in [
            "",
            "\"\"",
            &"k".repeat(256),
            &format!("\"{}\"", "k".repeat(256)),
            "\"open",
            "\"a\"b",
            r#""bad \n escape""#,
            "two words",
            "semi\"quote",
        ] {
            assert_eq!(parse(bad), Err(vec![HEADER.to_owned()]), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_key_order_but_not_content() {
        let path = "/api/users";
        let one = Fingerprint::of(&Method::POST, path, Some(&json!({"a": 1, "b": 2})));
        let same: serde_json::Value = serde_json::from_str(r#"{ "b":2, "a":1 }"#).unwrap();
        assert_eq!(one, Fingerprint::of(&Method::POST, path, Some(&same)));
        assert_ne!(
            one,
            Fingerprint::of(&Method::POST, path, Some(&json!({"a": 2, "b": 2})))
        );
        assert_ne!(
            one,
            Fingerprint::of(&Method::PUT, path, Some(&json!({"a": 1, "b": 2})))
        );
        assert_ne!(
            one,
            Fingerprint::of(&Method::POST, "/api/users/1", Some(&same))
        );
    }
}
