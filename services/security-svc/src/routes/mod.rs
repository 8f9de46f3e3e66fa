//! HTTP routes. The Vault-compatible surface (`/v1/sys`, `/v1/transit`) answers in Vault's
//! envelopes; `/health`, `/metrics` and `/openapi.json` are the service's own.

pub mod batch;
pub mod body;
pub mod contexts;
pub mod crypt;
pub mod health;
pub mod keys;
pub mod misc;
pub mod openapi;
pub mod refusal;
pub mod segments;
pub mod sign;
pub mod sys;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vottery_common::vault::VaultResponse;
use vottery_server::observe::{RequestId, request_id_of};

use crate::auth::{Caller, Operation, presented_token};
use crate::error::VaultError;
use crate::keys::store::KeyStore;
use crate::metrics::Outcome;
use crate::startup::AppState;

/// An authorised caller of an unsealed instance: 503 while sealed (checked first, as Vault
/// does), 403 without a valid token.
pub struct Authorized {
    pub store: Arc<KeyStore>,
    pub caller: Arc<Caller>,
    pub request_id: RequestId,
}

impl Authorized {
    /// 403 unless the caller's policy allows `operation` on `key`.
    pub fn require(&self, operation: Operation, key: Option<&str>) -> Result<(), VaultError> {
        if self.caller.policy.allows(operation, key) {
            Ok(())
        } else {
            tracing::info!(caller = %self.caller.name, operation = %operation, key, "operation denied by policy");
            Err(VaultError::forbidden())
        }
    }
}

/// Resolves the caller of a request, without the seal check (sys routes).
pub fn caller_of(state: &AppState, req: &HttpRequest) -> Option<Arc<Caller>> {
    let token = presented_token(req)?;
    state
        .tokens
        .resolve(token, || state.seal.root_token_digest())
}

impl FromRequest for Authorized {
    type Error = VaultError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(VaultError::internal)?;
            let store = state.seal.store()?;
            let caller = caller_of(state, req).ok_or_else(VaultError::forbidden)?;
            Ok(Authorized {
                store,
                caller,
                request_id: request_id_of(req),
            })
        })())
    }
}

/// A Vault request body: empty means all defaults, bad JSON is 400, too large is 413.
pub struct VaultBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for VaultBody<T> {
    type Error = VaultError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = body::read_bounded(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|unread| match unread {
                body::Unread::TooLarge(_) => VaultError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "http: request body too large",
                ),
                body::Unread::Broken => VaultError::bad_request("error reading the request body"),
            })?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(VaultBody(T::default()));
            }
            serde_json::from_slice(&body)
                .map(VaultBody)
                .map_err(|error| VaultError::bad_request(format!("error parsing JSON: {error}")))
        })
    }
}

/// A `200` Vault envelope around `data`.
pub fn vault_ok<T: Serialize>(
    request_id: &RequestId,
    data: T,
    warnings: Vec<String>,
) -> HttpResponse {
    vault_with_status(StatusCode::OK, request_id, data, warnings)
}

/// A Vault envelope with a chosen status (batches with failed items answer 400 with results).
pub fn vault_with_status<T: Serialize>(
    status: StatusCode,
    request_id: &RequestId,
    data: T,
    warnings: Vec<String>,
) -> HttpResponse {
    let envelope = VaultResponse::new(request_id.as_str(), "transit", data).with_warnings(warnings);
    match serde_json::to_vec(&envelope) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        Err(error) => {
            tracing::error!(%error, "response serialisation failed");
            actix_web::ResponseError::error_response(&VaultError::internal())
        }
    }
}

/// `204 No Content`, as Vault answers deletes and seal.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// Runs an operation's handler body and records its metrics (outcome, latency, items).
pub async fn measured<F>(
    state: &AppState,
    operation: Operation,
    items: usize,
    body: F,
) -> Result<HttpResponse, VaultError>
where
    F: Future<Output = Result<HttpResponse, VaultError>>,
{
    let started = Instant::now();
    let result = body.await;
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status.as_u16(),
    };
    let outcome = Outcome::of_status(status, state.seal.is_sealed());
    state
        .metrics
        .record(operation, outcome, started.elapsed(), items);
    result
}

/// Decodes an optional base64 field, naming it in the error.
pub fn decode_field(field: &str, value: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    crate::keys::wire::decode_optional(value)
        .map_err(|_| format!("failed to base64-decode {field}"))
}

/// Registers every route. Query strings that do not parse answer Vault's `400 {"errors":[]}`.
/// A resource answering `handler` to both POST and PUT: Vault takes either for a write.
pub fn post_or_put<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler.clone()))
        .route(web::put().to(handler))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _| {
        tracing::debug!(%error, "unreadable query string");
        VaultError {
            status: StatusCode::BAD_REQUEST,
            errors: Vec::new(),
            retry_after: None,
        }
        .into()
    }));
    // Routes are matched in registration order: the data-plane operations, which carry nearly
    // all of the traffic, come first.
    crypt::configure(cfg);
    sign::configure(cfg);
    keys::configure(cfg);
    contexts::configure(cfg);
    sys::configure(cfg);
    crate::guardians::routes::configure(cfg);
    misc::configure(cfg);
    health::configure(cfg);
}
