//! A read whose database connection was lost mid-request (the server ended the session, as in
//! a failover or a restart) is served once more, on a fresh connection, before the client is
//! told 503. Reads change nothing, so running one again is always safe; writes are not rerun
//! here: the client retries them with their `Idempotency-Key`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

use crate::error::ApiError;

/// Serves a `GET` or `HEAD` again when its answer is a lost database connection.
pub async fn reread_on_lost_connection(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let response = next.call(req).await?;
    if !is_read || !lost_connection(&response) {
        return Ok(response);
    }
    tracing::info!("a read lost its database connection; serving it again");
    let (request, _) = response.into_parts();
    let mut again = ServiceRequest::from_request(request);
    again.match_info_mut().reset();
    next.call(again).await
}

fn lost_connection<B>(response: &ServiceResponse<B>) -> bool {
    response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .is_some_and(|error| matches!(error, ApiError::ConnectionLost(_)))
}
