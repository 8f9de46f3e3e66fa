//! The errors of the Vault-compatible surface: `{"errors": [...]}` with Vault's status codes.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, ResponseError};
use vottery_common::vault::{PERMISSION_DENIED, SEALED_MESSAGE, VaultErrors};

use crate::keys::ops::OpError;
use crate::keys::store::StoreError;
use crate::seal::{SealError, Sealed};

/// An error answer in Vault's shape.
#[derive(Debug, Clone)]
pub struct VaultError {
    pub status: StatusCode,
    pub errors: Vec<String>,
    pub retry_after: Option<u64>,
}

impl VaultError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
            retry_after: None,
        }
    }

    /// 400 with Vault's message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403: no token, an unknown token, or an operation outside the token's policy.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, PERMISSION_DENIED)
    }

    pub fn sealed() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, SEALED_MESSAGE)
    }

    /// 404 with an empty error list (a missing key on read, an empty list).
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: the database cannot be reached.
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            errors: vec!["storage is unavailable; retry shortly".into()],
            retry_after: Some(1),
        }
    }

    /// 500 without details; the cause is logged where it happened.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// 503 for storage that cannot be reached; `cause` is logged, not answered.
    fn storage_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        Self::unavailable()
    }

    /// 500 for `what` failing; `cause` is logged, not answered.
    fn failed(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::internal()
    }
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.errors.join("; "))
    }
}

impl ResponseError for VaultError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.body(
            serde_json::to_vec(&VaultErrors {
                errors: self.errors.clone(),
            })
            .unwrap_or_default(),
        )
    }
}

impl From<Sealed> for VaultError {
    fn from(_: Sealed) -> Self {
        VaultError::sealed()
    }
}

impl From<OpError> for VaultError {
    fn from(error: OpError) -> Self {
        match error {
            OpError::User(message) => VaultError::bad_request(message),
            OpError::Internal(message) => VaultError::failed("crypto operation failed", message),
        }
    }
}

impl From<StoreError> for VaultError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => VaultError::storage_unavailable(cause),
            StoreError::NotFound => VaultError::bad_request("encryption key not found"),
            StoreError::Rejected(message) => VaultError::bad_request(message),
            StoreError::Internal(cause) => VaultError::failed("key store failure", cause),
        }
    }
}

impl From<SealError> for VaultError {
    fn from(error: SealError) -> Self {
        match error {
            SealError::Unavailable(cause) => VaultError::storage_unavailable(cause),
            SealError::Internal(cause) => VaultError::failed("seal failure", cause),
            other => VaultError::bad_request(other.to_string()),
        }
    }
}
