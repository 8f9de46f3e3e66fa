//! The one error type of the guardian routes, mapped explicitly to RFC 9457 problems. Nothing
//! secret is ever put in one: details name fields, guardians and steps, never values.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vottery_common::problem::{FieldError, Problem};
use vottery_common::vault::SEALED_MESSAGE;
use vottery_server::problem::ProblemResponse;

use crate::error::VaultError;
use crate::keys::ops::OpError;
use crate::keys::store::StoreError;
use crate::seal::barrier::BarrierError;

/// Every way a guardian request can fail.
#[derive(Debug, thiserror::Error)]
pub enum GuardianError {
    /// 503: the instance is sealed.
    #[error("the instance is sealed")]
    Sealed,
    /// 403: no token, an unknown token, or the operation is outside the token's policy.
    #[error("permission denied")]
    Forbidden,
    /// 404: this instance hosts no guardian of that name.
    #[error("guardian {0} not found")]
    NotFound(String),
    /// 400: the body is not JSON at all.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// 400: values that cannot be used (out of range, not group members, bad proofs, wrong
    /// parameters); each field is named.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 422: fields that are not part of the request.
    #[error("unknown fields")]
    UnknownFields(Vec<FieldError>),
    /// 409: a step out of order, or a repeated step with a different body.
    #[error("{detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 413: the body is larger than the configured limit.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// 415: the body is not declared as JSON.
    #[error("the body must be JSON")]
    NotJson,
    /// 503 with `Retry-After`: the database cannot be reached; nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// 500: logged with its cause, answered bare.
    #[error("internal: {0}")]
    Internal(String),
}

impl GuardianError {
    /// 400 naming one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self::Invalid {
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    /// Nothing when no field was refused, else 400 naming every refused field.
    pub fn unless_refused(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self::invalid_fields(errors))
        }
    }

    /// 400 naming several fields.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self::Invalid { detail, errors }
    }

    /// 409 with a detail and the field it concerns.
    pub fn conflict(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::Conflict {
            errors: vec![FieldError::new(field, detail.clone())],
            detail,
        }
    }

    /// 409: `step` must come first.
    pub fn missing_step(step: &str, detail: impl Into<String>) -> Self {
        Self::conflict(step, detail)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GuardianError::Sealed | GuardianError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GuardianError::Forbidden => StatusCode::FORBIDDEN,
            GuardianError::NotFound(_) => StatusCode::NOT_FOUND,
            GuardianError::Malformed(_) | GuardianError::Invalid { .. } => StatusCode::BAD_REQUEST,
            GuardianError::UnknownFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            GuardianError::Conflict { .. } => StatusCode::CONFLICT,
            GuardianError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GuardianError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GuardianError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem answered for this error; unexpected causes are logged here, not returned.
    pub fn to_problem(&self) -> ProblemResponse {
        let none = Vec::new;
        let (slug, title, detail, errors) = match self {
            GuardianError::Malformed(detail) => return ProblemResponse::malformed(detail.clone()),
            GuardianError::UnknownFields(errors) => {
                return ProblemResponse::validation(errors.clone());
            }
            GuardianError::Sealed => ("sealed", "Sealed", SEALED_MESSAGE.to_owned(), none()),
            GuardianError::Forbidden => {
                ("forbidden", "Forbidden", "permission denied".into(), none())
            }
            GuardianError::NotFound(name) => (
                "not-found",
                "Not found",
                format!("no guardian {name} on this instance"),
                vec![FieldError::new("guardian", "no such guardian")],
            ),
            GuardianError::Invalid { detail, errors } => (
                "invalid-value",
                "Invalid value",
                detail.clone(),
                errors.clone(),
            ),
            GuardianError::Conflict { detail, errors } => {
                ("conflict", "Conflict", detail.clone(), errors.clone())
            }
            GuardianError::TooLarge(limit) => (
                "payload-too-large",
                "Payload too large",
                format!("the request body is larger than {limit} bytes"),
                vec![FieldError::new("body", format!("at most {limit} bytes"))],
            ),
            GuardianError::NotJson => (
                "unsupported-media-type",
                "Unsupported media type",
                "the request body must be JSON (Content-Type: application/json)".into(),
                vec![FieldError::new("Content-Type", "must be application/json")],
            ),
            GuardianError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                let detail = "storage is unavailable; nothing was changed, retry shortly";
                ("unavailable", "Service unavailable", detail.into(), none())
            }
            GuardianError::Internal(cause) => {
                tracing::error!(error = %cause, "guardian operation failed");
                let detail = "an unexpected error occurred";
                ("internal", "Internal error", detail.into(), none())
            }
        };
        let status = self.status().as_u16();
        let answer =
            ProblemResponse::new(Problem::new(slug, title, status, detail).with_errors(errors));
        match self {
            GuardianError::Unavailable(_) => answer.retry_after(1),
            _ => answer,
        }
    }
}

impl ResponseError for GuardianError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_problem().error_response()
    }
}

/// The shared extractor's refusals: sealed, no or wrong token, storage down.
impl From<VaultError> for GuardianError {
    fn from(error: VaultError) -> Self {
        match error.status {
            StatusCode::FORBIDDEN => GuardianError::Forbidden,
            StatusCode::SERVICE_UNAVAILABLE
                if error.errors.iter().any(|message| message == SEALED_MESSAGE) =>
            {
                GuardianError::Sealed
            }
            StatusCode::SERVICE_UNAVAILABLE => GuardianError::Unavailable(error.to_string()),
            _ => GuardianError::Internal(error.to_string()),
        }
    }
}

impl From<StoreError> for GuardianError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => GuardianError::Unavailable(cause),
            other => GuardianError::Internal(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for GuardianError {
    fn from(error: diesel::result::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl From<BarrierError> for GuardianError {
    fn from(error: BarrierError) -> Self {
        GuardianError::Internal(format!("guardian secret under the barrier: {error}"))
    }
}

impl From<OpError> for GuardianError {
    fn from(error: OpError) -> Self {
        GuardianError::Internal(format!("signing the ceremony record: {}", error.message()))
    }
}

impl From<tokio::task::JoinError> for GuardianError {
    fn from(error: tokio::task::JoinError) -> Self {
        GuardianError::Internal(format!("a blocking guardian computation failed: {error}"))
    }
}
