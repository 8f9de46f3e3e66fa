//! `/v1/sys/{init,unseal,seal-status,seal,health}`: Vault's seal routes.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::{Deserialize, Serialize};
use vottery_common::sys::{
    HealthStatus, InitRequest, InitResponse, InitStatus, SealStatus, UnsealRequest,
};
use vottery_common::vault::VaultErrors;

use super::openapi::StorageErrors;
use super::{AppState, VaultBody, caller_of, no_content, post_or_put};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::metrics::Outcome;
use crate::seal::shamir::SHARE_LEN;

type Body<T> = Result<VaultBody<T>, VaultError>;

/// Sys routes answer bare JSON (no `data` envelope), as Vault's do.
fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body)
}

fn record(
    state: &AppState,
    operation: Operation,
    started: Instant,
    result: &Result<HttpResponse, VaultError>,
) {
    let status = match result {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status.as_u16(),
    };
    state.metrics.record(
        operation,
        Outcome::of_status(status, false),
        started.elapsed(),
        1,
    );
}

/// Whether the root key has been made.
#[utoipa::path(get, path = "/v1/sys/init", tag = "sys", operation_id = "read_init_status",
    responses(
        (status = 200, description = "`initialized`", body = InitStatus),
        StorageErrors,
    ))]
pub async fn init_status(state: web::Data<AppState>) -> Result<HttpResponse, VaultError> {
    state.seal.sync_config().await?;
    Ok(json(
        StatusCode::OK,
        &InitStatus {
            initialized: state.seal.is_initialized(),
        },
    ))
}

/// Initializes: makes the root key and splits it into shares.
///
/// `secret_shares` shares, `secret_threshold` of which unseal. The shares and the root token
/// are shown once. The instance stays sealed.
#[utoipa::path(method(post, put), path = "/v1/sys/init", tag = "sys", operation_id = "init",
    request_body = InitRequest,
    responses(
        (status = 200, description = "The shares (hex and base64) and the root token", body = InitResponse),
        (status = 400, description = "Already initialized, shares or threshold out of range, or PGP keys given", body = VaultErrors),
        StorageErrors,
    ))]
pub async fn init(
    state: web::Data<AppState>,
    body: Body<InitRequest>,
) -> Result<HttpResponse, VaultError> {
    let request = body?.0;
    if request
        .pgp_keys
        .as_ref()
        .is_some_and(|keys| !keys.is_empty())
        || request.root_token_pgp_key.is_some()
    {
        return Err(VaultError::bad_request(
            "PGP-encrypted shares and root tokens are not supported",
        ));
    }
    let initialized = state
        .seal
        .init(
            request.secret_shares.unwrap_or(0),
            request.secret_threshold.unwrap_or(0),
        )
        .await?;
    tracing::info!(
        shares = initialized.shares.len(),
        "initialized: root key made and split; shares handed out once"
    );
    Ok(json(StatusCode::OK, &initialized.handed_out()))
}

/// The seal state and the progress of the current unseal attempt.
#[utoipa::path(get, path = "/v1/sys/seal-status", tag = "sys", operation_id = "read_seal_status",
    responses(
        (status = 200, description = "The seal state", body = SealStatus),
        StorageErrors,
    ))]
pub async fn seal_status(state: web::Data<AppState>) -> Result<HttpResponse, VaultError> {
    state.seal.sync_config().await?;
    Ok(json(StatusCode::OK, &state.seal.status()))
}

/// A share as an operator pastes it: hex when it decodes to a share's length, else base64.
fn decode_share(key: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError> {
    let key = key.trim();
    if let Ok(bytes) = hex::decode(key)
        && (16..=SHARE_LEN).contains(&bytes.len())
    {
        return Ok(zeroize::Zeroizing::new(bytes));
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| VaultError::bad_request("'key' must be a valid hex or base64 string"))
}

/// Submits one unseal share.
///
/// A share in hex or base64; the threshold-th share unseals. `reset` discards the shares
/// given so far.
#[utoipa::path(method(post, put), path = "/v1/sys/unseal", tag = "sys", operation_id = "unseal",
    request_body = UnsealRequest,
    responses(
        (status = 200, description = "The seal state after this share", body = SealStatus),
        (status = 400, description = "No key, an undecodable key, a share that does not belong, or not initialized", body = VaultErrors),
        StorageErrors,
    ))]
pub async fn unseal(
    state: web::Data<AppState>,
    body: Body<UnsealRequest>,
) -> Result<HttpResponse, VaultError> {
    let started = Instant::now();
    let result = async {
        let request = body?.0;
        if request.reset.unwrap_or(false) {
            state.seal.sync_config().await?;
            return Ok(json(StatusCode::OK, &state.seal.reset()?));
        }
        let key = request
            .key
            .as_deref()
            .filter(|key| !key.trim().is_empty())
            .ok_or_else(|| {
                VaultError::bad_request(
                    "'key' must be specified in request body as JSON, or 'reset' set to true",
                )
            })?;
        let share = decode_share(key)?;
        match state.seal.submit_share(&share).await {
            Ok(status) => {
                if !status.sealed {
                    tracing::info!("unsealed");
                    state.ensure_bootstrap_keys().await;
                }
                Ok(json(StatusCode::OK, &status))
            }
            Err(error) => {
                tracing::warn!(error = %error, "unseal share refused");
                Err(error.into())
            }
        }
    }
    .await;
    record(&state, Operation::Seal, started, &result);
    result
}

/// Seals the instance: key material is dropped from memory until unsealed again.
#[utoipa::path(method(post, put), path = "/v1/sys/seal", tag = "sys", operation_id = "seal",
    responses(
        (status = 204, description = "Sealed"),
        (status = 403, description = "No token, or a token whose policy does not allow sealing", body = VaultErrors),
    ),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn seal(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, VaultError> {
    let caller = caller_of(&state, &req).ok_or_else(VaultError::forbidden)?;
    if !caller.policy.allows(Operation::Seal, None) {
        return Err(VaultError::forbidden());
    }
    state.seal.seal();
    tracing::warn!(caller = %caller.name, "sealed: key material dropped from memory");
    Ok(no_content())
}

/// Status-code overrides of `/v1/sys/health`, as Vault's.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Accepted for compatibility; this service has no standbys.
    standbyok: Option<String>,
    /// Status when initialized and unsealed (default 200).
    #[param(minimum = 200, maximum = 599)]
    activecode: Option<u16>,
    /// Status when sealed (default 503).
    #[param(minimum = 200, maximum = 599)]
    sealedcode: Option<u16>,
    /// Status when not initialized (default 501).
    #[param(minimum = 200, maximum = 599)]
    uninitcode: Option<u16>,
}

/// `HEAD /v1/sys/health`, documented apart from [`health`]'s `GET`.
pub struct HealthHead;

/// An override's status, when it is a final one (200 to 599): an informational status would
/// leave the client waiting for the real answer.
fn final_status(code: u16) -> Option<StatusCode> {
    (200..=599)
        .contains(&code)
        .then(|| StatusCode::from_u16(code).ok())
        .flatten()
}

/// Health for load balancers.
///
/// The status code tells the state, the body the details. `HEAD` answers the same status
/// without a body.
#[utoipa::path(get, path = "/v1/sys/health", tag = "sys", operation_id = "health",
    params(HealthQuery),
    responses(
        (status = 200, description = "Initialized and unsealed", body = HealthStatus),
        (status = 501, description = "Not initialized", body = HealthStatus),
        (status = 503, description = "Sealed", body = HealthStatus),
        (status = 400, description = "A status-code override is not a valid status", body = VaultErrors),
        (status = "default", description = "The status an override (`activecode`, `sealedcode`, `uninitcode`) names", body = HealthStatus),
    ))]
#[utoipa::path(head, path = "/v1/sys/health", tag = "sys", operation_id = "health_head", impl_for = HealthHead,
    params(HealthQuery),
    responses(
        (status = 200, description = "Initialized and unsealed"),
        (status = 501, description = "Not initialized"),
        (status = 503, description = "Sealed"),
        (status = 400, description = "A status-code override is not a valid status"),
        (status = "default", description = "The status an override (`activecode`, `sealedcode`, `uninitcode`) names"),
    ))]
pub async fn health(
    state: web::Data<AppState>,
    query: web::Query<HealthQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, VaultError> {
    let _ = &query.standbyok;
    state.seal.sync_config().await?;
    let initialized = state.seal.is_initialized();
    let sealed = state.seal.is_sealed();
    let code = if !initialized {
        query.uninitcode.unwrap_or(501)
    } else if sealed {
        query.sealedcode.unwrap_or(503)
    } else {
        query.activecode.unwrap_or(200)
    };
    let status = final_status(code).ok_or(VaultError {
        status: StatusCode::BAD_REQUEST,
        errors: Vec::new(),
        retry_after: None,
    })?;
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(HttpResponse::build(status).finish());
    }
    let body = HealthStatus {
        initialized,
        sealed,
        standby: false,
        performance_standby: false,
        replication_performance_mode: "disabled".into(),
        replication_dr_mode: "disabled".into(),
        server_time_utc: chrono::Utc::now().timestamp(),
        version: env!("CARGO_PKG_VERSION").into(),
        cluster_name: (!sealed).then(|| "vottery-security".to_owned()),
        cluster_id: None,
    };
    Ok(json(status, &body))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_or_put("/v1/sys/init", init).route(web::get().to(init_status)))
        .service(web::resource("/v1/sys/seal-status").route(web::get().to(seal_status)))
        .service(post_or_put("/v1/sys/unseal", unseal))
        .service(post_or_put("/v1/sys/seal", seal))
        .service(
            web::resource("/v1/sys/health")
                .route(web::get().to(health))
                .route(web::head().to(health)),
        );
}
