//! Reading a request body whole, up to the instance's `max_body_bytes`: the transit and the
//! guardian bodies are read alike and refused in their own shapes.

use std::future::Future;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use crate::startup::AppState;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Declared or found longer than the limit (in bytes).
    TooLarge(usize),
    /// The connection failed while it was read.
    Broken,
}

/// The request's body, refused at once when its declared length is over the limit, and as soon
/// as what arrives passes it.
pub fn read_bounded(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::BytesMut, Unread>> + 'static {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(4 << 20, |state| state.max_body_bytes);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if declared.is_some_and(|length| length > limit) {
            return Err(Unread::TooLarge(limit));
        }
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| Unread::Broken)?;
            if body.len() + chunk.len() > limit {
                return Err(Unread::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[actix_web::test]
    async fn a_body_is_read_whole_and_one_declared_too_long_is_refused_unread() {
        let (req, mut payload) = TestRequest::default()
            .set_payload("{\"plaintext\":\"aGk=\"}")
            .to_http_parts();
        let body = read_bounded(&req, &mut payload).await.unwrap();
        assert_eq!(&body[..], b"{\"plaintext\":\"aGk=\"}");

        let (req, mut payload) = TestRequest::default()
            .insert_header((CONTENT_LENGTH, (5usize << 20).to_string()))
            .to_http_parts();
        assert_eq!(
            read_bounded(&req, &mut payload).await.unwrap_err(),
            Unread::TooLarge(4 << 20)
        );
    }
}
