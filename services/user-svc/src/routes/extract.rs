//! What the user routes extract before calling a use case: the request context (state,
//! authenticated caller, request metadata), the `{id}` of a user's path, the `{session_id}`
//! of a session's, and the `Idempotency-Key` of a mutating request.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::idempotency::{self, Fingerprint, IdempotencyKey, KeyedRequest};
use crate::startup::AppState;
use crate::users::service::Ctx;

/// The context of a request, extracted once: the application state, the authenticated caller
/// (401 and 429 are answered here) and the request's metadata.
pub struct RequestContext {
    state: web::Data<AppState>,
    principal: Principal,
    meta: RequestMeta,
}

impl RequestContext {
    /// The context as a use case takes it.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            state: &self.state,
            principal: &self.principal,
            meta: &self.meta,
        }
    }

    /// The authenticated caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let principal = Principal::from_request(req, payload);
        let meta = RequestMeta::from_request(req, payload).into_inner();
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let principal = principal.await?;
            Ok(Self {
                state,
                principal,
                meta: meta?,
            })
        })
    }
}

/// The `{id}` of a user's path, as sent. It is read in the handler rather than refused while
/// extracting, so that authentication is answered first (401 before 422) and a refused write
/// is audited against the id it named.
pub struct UserIdPath(String);

impl UserIdPath {
    /// The user id: a positive whole number (422 otherwise).
    pub fn id(&self) -> Result<i32, ApiError> {
        positive_id("id", &self.0)
    }

    /// The user id, or with `me` the caller's own (403 for a service, which has no account).
    pub fn or_me(&self, principal: &Principal) -> Result<i32, ApiError> {
        match (self.0.as_str(), principal) {
            ("me", Principal::User(id)) => Ok(*id),
            ("me", Principal::Service(_)) => Err(ApiError::Forbidden(
                "`me` is for user tokens; a service token has no account".into(),
            )),
            _ => self.id(),
        }
    }

    /// The user a refused attempt is recorded against: the id named, if it is a number.
    pub fn audit_target(&self) -> Option<i32> {
        self.0.parse::<i32>().ok()
    }

    /// [`Self::audit_target`], reading `me` as the caller.
    pub fn audit_target_or_me(&self, principal: &Principal) -> Option<i32> {
        self.or_me(principal).ok().or_else(|| self.audit_target())
    }
}

impl FromRequest for UserIdPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(UserIdPath(segment(req, "id"))))
    }
}

/// The `{session_id}` of a session's path, as sent; read in the handler like [`UserIdPath`].
pub struct SessionIdPath(String);

impl SessionIdPath {
    /// The session id: a positive whole number (422 otherwise).
    pub fn id(&self) -> Result<i32, ApiError> {
        positive_id("session_id", &self.0)
    }
}

impl FromRequest for SessionIdPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(SessionIdPath(segment(req, "session_id"))))
    }
}

/// A named segment of the matched path, as sent (empty when the route has none).
fn segment(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// A path id: a positive whole number, or a 422 naming `field`.
fn positive_id(field: &str, text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field(field, "must be a positive whole number"))
}

/// The `Idempotency-Key` of a mutating request as sent, with the method and path its
/// fingerprint covers. Read in the handler like [`UserIdPath`], so that 401 comes first.
pub struct IdempotencyHeader {
    values: Vec<HeaderValue>,
    method: Method,
    path: String,
}

impl IdempotencyHeader {
    /// The key and the fingerprint of the request with `body`; none without the header; 422
    /// naming the header when the key is not valid or is sent more than once.
    pub fn keyed(&self, body: Option<&Value>) -> Result<Option<KeyedRequest>, ApiError> {
        let value = match self.values.as_slice() {
            [] => return Ok(None),
            [value] => value,
            _ => return Err(idempotency::invalid_key("must be sent once")),
        };
        Ok(Some(KeyedRequest {
            key: IdempotencyKey::parse(value)?,
            fingerprint: Fingerprint::of(&self.method, &self.path, body),
        }))
    }
}

impl FromRequest for IdempotencyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(IdempotencyHeader {
            values: req
                .headers()
                .get_all(idempotency::HEADER)
                .cloned()
                .collect(),
            method: req.method().clone(),
            path: req.path().to_owned(),
        }))
    }
}

/// The `Idempotency-Key` request header, as the OpenAPI document describes it on every
/// mutating operation.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // a schema only
pub struct IdempotencyKeyParam {
    /// Makes the request safe to retry (the IETF HTTPAPI draft "The Idempotency-Key HTTP
    /// Header Field", with Stripe's semantics): a quoted string of 1 to 255 printable ASCII
    /// characters, such as a UUID (sent bare, it reads the same). A retry with the same key
    /// and the same request (method, path and JSON body) gets the first answer again, with
    /// `Idempotent-Replayed: true`; the same key with another request is 422; a retry while
    /// the first request runs is 409 with `Retry-After`. A request refused or failed without a
    /// change frees its key. Keys are per caller and kept 24 hours
    /// (`idempotency.retention_hours`).
    #[param(
        rename = "Idempotency-Key",
        required = false,
        pattern = r#"^([!#-\[\]-~]{1,255}|"([ !#-\[\]-~]|\\["\\]){1,255}")$"#
    )]
    idempotency_key: String,
}

/// The `{id}` of a user's path, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema only
pub struct UserIdParam {
    /// The user's id
    #[param(minimum = 1, maximum = 2147483647)]
    id: i32,
}

/// The `{id}` of a user's path where `me` names the caller, as the OpenAPI document describes
/// it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema only
pub struct UserIdOrMeParam {
    /// The user's id (1 to 2147483647), or `me` for the caller's own
    #[param(pattern = "^(me|[1-9][0-9]{0,9})$")]
    id: String,
}

/// The path of one of a user's sessions, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema only
pub struct SessionParams {
    /// The user's id (1 to 2147483647), or `me` for the caller's own
    #[param(pattern = "^(me|[1-9][0-9]{0,9})$")]
    id: String,
    /// The session's id
    #[param(minimum = 1, maximum = 2147483647)]
    session_id: i32,
}

/// The `If-Match` request header of a change to a user, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // a schema only
pub struct IfMatchParam {
    /// The `ETag` this change is based on (or `*`: any); 412 when the user moved on
    #[param(
        rename = "If-Match",
        required = false,
        pattern = r#"^(\*|(W/)?"[0-9]{1,18}")$"#
    )]
    if_match: String,
}
