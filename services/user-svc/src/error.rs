//! user-svc's one error type, mapped explicitly to RFC 9457 problems. Unexpected failures are
//! logged with their cause and answered as a bare 500.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vottery_common::problem::{FieldError, Problem};
use vottery_server::problem::{ProblemResponse, problem_response};

/// Every way a user-svc request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: fields are wrong; each is named.
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    /// An extractor's own problem (400, 413, 415, 422), passed through.
    #[error("{}", .0.problem.detail)]
    Problem(ProblemResponse),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: the request conflicts with stored data (a duplicate email, the last manager).
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 409: the status cannot move there; the allowed moves are listed.
    #[error("invalid transition from {from} to {to}")]
    InvalidTransition {
        from: String,
        to: String,
        allowed: Vec<String>,
    },
    /// 412: `If-Match` named an older version.
    #[error("precondition failed: current version is {current}")]
    PreconditionFailed { current: i64 },
    /// 409: a write raced with others too often and gave up.
    #[error("too much contention on this user; retry")]
    Contention,
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    /// 503 + Retry-After: PostgreSQL or security-svc cannot be used right now.
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        cause: String,
    },
    /// 503 + Retry-After: the database connection was lost mid-request (the server ended the
    /// session or restarted). The pool replaces the connection; a read is served once more.
    #[error("the database connection was lost")]
    ConnectionLost(String),
    /// 409: another request with the same `Idempotency-Key` holds it (this one's claim was
    /// refused) or stored its answer first (this one's change was rolled back); the idempotency
    /// layer answers with what that request left.
    #[error("another request holds or answered this Idempotency-Key")]
    KeyTaken,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn database(cause: impl std::fmt::Display) -> Self {
        ApiError::Unavailable {
            dependency: "database",
            cause: cause.to_string(),
        }
    }

    /// The problem slug, for audit records of refused attempts.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::Problem(_) => "malformed-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::InvalidTransition { .. } => "invalid-transition",
            ApiError::PreconditionFailed { .. } => "precondition-failed",
            ApiError::Contention => "contention",
            ApiError::KeyTaken => "idempotency-key-in-use",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Unavailable { .. } | ApiError::ConnectionLost(_) => "dependency-unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Whether a refused attempt of this kind is written to the audit trail. Outages and bugs
    /// are not refusals (and must leave nothing written); unauthenticated calls have no actor.
    pub fn is_audited_refusal(&self) -> bool {
        !matches!(
            self,
            ApiError::Unavailable { .. }
                | ApiError::ConnectionLost(_)
                | ApiError::KeyTaken
                | ApiError::Internal(_)
                | ApiError::Unauthorized(_)
                | ApiError::RateLimited { .. }
        )
    }

    fn problem(&self) -> (Problem, Option<u64>) {
        match self {
            ApiError::Validation(errors) => {
                (*ProblemResponse::validation(errors.clone()).problem, None)
            }
            ApiError::Problem(response) => ((*response.problem).clone(), response.retry_after),
            ApiError::Unauthorized(detail) => (
                Problem::new("unauthorized", "Unauthorized", 401, detail.clone()),
                None,
            ),
            ApiError::Forbidden(detail) => (
                Problem::new("forbidden", "Forbidden", 403, detail.clone()),
                None,
            ),
            ApiError::NotFound(detail) => (
                Problem::new("not-found", "Not found", 404, detail.clone()),
                None,
            ),
            ApiError::Conflict { detail, errors } => (
                Problem::new("conflict", "Conflict", 409, detail.clone())
                    .with_errors(errors.clone()),
                None,
            ),
            ApiError::InvalidTransition { from, to, allowed } => {
                (invalid_transition(from, to, allowed), None)
            }
            ApiError::PreconditionFailed { current } => (precondition_failed(*current), None),
            ApiError::Contention => (
                Problem::new(
                    "contention",
                    "Conflict",
                    409,
                    "the user was changed concurrently too often; retry",
                ),
                Some(1),
            ),
            ApiError::KeyTaken => (
                Problem::new(
                    "idempotency-key-in-use",
                    "Conflict",
                    409,
                    "another request with this Idempotency-Key was answered first; retry with the same key to get its answer",
                ),
                Some(1),
            ),
            ApiError::RateLimited { retry_after } => (
                Problem::new(
                    "rate-limited",
                    "Too many requests",
                    429,
                    format!("rate limit exceeded; retry in {retry_after} s"),
                ),
                Some(*retry_after),
            ),
            ApiError::Unavailable { dependency, cause } => {
                (unavailable(dependency, cause), Some(2))
            }
            ApiError::ConnectionLost(cause) => (unavailable("database", cause), Some(1)),
            ApiError::Internal(error) => (internal(error), None),
        }
    }
}

/// A dependency that is down (logged with its cause, which the client is not told).
fn unavailable(dependency: &str, cause: &str) -> Problem {
    tracing::warn!(dependency, cause = %cause, "dependency unavailable");
    Problem::new(
        "dependency-unavailable",
        "Service unavailable",
        503,
        format!("{dependency} is unavailable; nothing was changed, retry shortly"),
    )
}

/// An unexpected failure: logged with its cause chain, answered as a bare 500.
fn internal(error: &anyhow::Error) -> Problem {
    tracing::error!(error = ?error, "unexpected failure");
    Problem::new(
        "internal",
        "Internal error",
        500,
        "an unexpected error occurred",
    )
}

/// A status change the lifecycle does not allow, with the moves that are allowed.
fn invalid_transition(from: &str, to: &str, allowed: &[String]) -> Problem {
    let detail = if allowed.is_empty() {
        format!(
            "status cannot change from {from} to {to}; no change is allowed from {from} for this caller"
        )
    } else {
        format!(
            "status cannot change from {from} to {to}; allowed: {}",
            allowed.join(", ")
        )
    };
    Problem::new(
        "invalid-transition",
        "Invalid status transition",
        409,
        detail,
    )
    .with_errors(vec![FieldError::new(
        "status",
        format!("must be one of: {}", allowed.join(", ")),
    )])
    .with_extension("current_status", serde_json::json!(from))
    .with_extension("allowed_transitions", serde_json::json!(allowed))
}

/// A write based on a version other than the stored one.
fn precondition_failed(current: i64) -> Problem {
    Problem::new(
        "precondition-failed",
        "Precondition failed",
        412,
        format!("the user changed since you read it; the current version is {current} (ETag \"{current}\")"),
    )
    .with_errors(vec![FieldError::new("If-Match", format!("must be \"{current}\""))])
    .with_extension("current_version", serde_json::json!(current))
}

impl From<ProblemResponse> for ApiError {
    fn from(problem: ProblemResponse) -> Self {
        ApiError::Problem(problem)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Problem(response) => response.status_code(),
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. }
            | ApiError::InvalidTransition { .. }
            | ApiError::Contention
            | ApiError::KeyTaken => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::ConnectionLost(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (problem, retry_after) = self.problem();
        problem_response(&problem, retry_after)
    }
}

/// Database errors: a lost connection (the server ended the session, restarted, or the socket
/// broke) and a statement timeout are outages (503 with Retry-After; the pool replaces the dead
/// connection), anything else is unexpected.
impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match &error {
            error if vottery_server::db::is_connection_lost(error) => {
                ApiError::ConnectionLost(error.to_string())
            }
            Error::DatabaseError(_, info) if info.message().contains("statement timeout") => {
                ApiError::database(error)
            }
            Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some(crate::idempotency::KEY_ANSWERED) =>
            {
                ApiError::KeyTaken
            }
            _ => ApiError::Internal(anyhow::Error::new(error)),
        }
    }
}

impl From<vottery_server::db::PoolError> for ApiError {
    fn from(error: vottery_server::db::PoolError) -> Self {
        ApiError::database(error)
    }
}
