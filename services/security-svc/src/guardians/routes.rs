//! `/v1/guardians/{guardian}`: the key ceremony's steps and the partial decryptions, as thin
//! handlers. Each checks the seal (503), the token's policy for the guardian's name (403), then
//! the body, calls one step, and answers JSON or an RFC 9457 problem. Every call is counted in
//! `/metrics` under `guardian-ceremony` or `guardian-decrypt`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vottery_common::guardians::{
    BackupsAnswer, CeremonyRecord, CompensateShares, CompensatedShares, CreateGuardian,
    DecryptShares, DecryptionShares, Finalize, GuardianStatus, ShareBackups, VerificationsAnswer,
    VerifyBackups,
};
use vottery_server::problem::ProblemResponse;

use super::body::GuardianBody;
use super::create::Outcome as Creation;
use super::error::GuardianError;
use super::input::GuardianName;
use super::{backups, create, decrypt, finalize, verify};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::store::KeyStore;
use crate::metrics::Outcome;
use crate::routes::Authorized;
use crate::routes::openapi::GuardianErrors;
use crate::startup::AppState;

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<GuardianBody<T>, GuardianError>;
type Answer = Result<HttpResponse, ProblemResponse>;

/// The `{guardian}` path segment.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GuardianPath {
    /// The guardian's name (like a transit key name: letters, digits, `_`, `-`, `.`).
    #[param(min_length = 1, max_length = 128, pattern = r"^\w([\w.-]*\w)?$")]
    guardian: String,
}

/// The key store and the guardian's name, once the caller may run `operation` on it.
fn authorize(
    auth: Auth,
    path: &GuardianPath,
    operation: Operation,
) -> Result<(Arc<KeyStore>, GuardianName), GuardianError> {
    let auth = auth?;
    auth.require(operation, Some(&path.guardian))?;
    Ok((auth.store, GuardianName::parse(&path.guardian)?))
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<HttpResponse, GuardianError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|error| GuardianError::Internal(format!("serialising an answer: {error}")))?;
    Ok(HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(bytes))
}

/// Runs a handler's body, records its metrics and turns a refusal into a problem for `req`.
async fn run<F>(
    state: &AppState,
    req: &HttpRequest,
    operation: Operation,
    items: usize,
    body: F,
) -> Answer
where
    F: Future<Output = Result<HttpResponse, GuardianError>>,
{
    let started = Instant::now();
    let result = body.await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.status(),
    };
    let outcome = Outcome::of_status(status.as_u16(), state.seal.is_sealed());
    state
        .metrics
        .record(operation, outcome, started.elapsed(), items);
    result.map_err(|error| error.to_problem().for_request(req))
}

/// What every guardian route is given before its body: the service, the request, the caller and
/// the `{guardian}` segment.
type Call = (
    web::Data<AppState>,
    HttpRequest,
    Auth,
    web::Path<GuardianPath>,
);

/// Answers one guardian route: the caller must hold `operation` on the guardian, then `step`
/// runs with the key store and the guardian's name; metrics count `items`.
async fn answer<F, Fut>(call: Call, operation: Operation, items: usize, step: F) -> Answer
where
    F: FnOnce(Arc<KeyStore>, GuardianName) -> Fut,
    Fut: Future<Output = Result<HttpResponse, GuardianError>>,
{
    let (state, req, auth, path) = call;
    run(&state, &req, operation, items, async {
        let (keys, name) = authorize(auth, &path, operation)?;
        step(keys, name).await
    })
    .await
}

/// Answers a ceremony step that takes a body: `step` runs on the guardian the path names, and
/// its result is the 200 answer.
async fn ceremony_step<T, R>(
    call: Call,
    body: Body<T>,
    step: impl AsyncFnOnce(&KeyStore, &GuardianName, T) -> Result<R, GuardianError>,
) -> Answer
where
    R: Serialize,
{
    answer(
        call,
        Operation::GuardianCeremony,
        1,
        async move |keys, name| json(StatusCode::OK, &step(&keys, &name, body?.0).await?),
    )
    .await
}

/// Creates a guardian.
///
/// Makes the guardian's secret polynomial of degree `quorum − 1` (sealed under the instance's
/// barrier) and answers its public record. The same body again answers the same guardian with
/// 200; other parameters for an existing guardian are 409.
#[utoipa::path(post, path = "/v1/guardians/{guardian}", tag = "guardians", operation_id = "create_guardian",
    params(GuardianPath), request_body = CreateGuardian,
    responses((status = 201, description = "The guardian was created", body = GuardianStatus),
              (status = 200, description = "The guardian already existed with these parameters", body = GuardianStatus),
              GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn create_guardian(call: Call, body: Body<CreateGuardian>) -> Answer {
    answer(
        call,
        Operation::GuardianCeremony,
        1,
        async move |keys, name| {
            let (status, outcome) = create::create(&keys, &name, body?.0).await?;
            let code = match outcome {
                Creation::Created => StatusCode::CREATED,
                Creation::Existing => StatusCode::OK,
            };
            json(code, &status)
        },
    )
    .await
}

/// Reads a guardian: its ceremony, stage, public record and, once finalized, the joint key.
#[utoipa::path(get, path = "/v1/guardians/{guardian}", tag = "guardians", operation_id = "read_guardian",
    params(GuardianPath),
    responses((status = 200, description = "The guardian", body = GuardianStatus), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn read_guardian(call: Call) -> Answer {
    answer(
        call,
        Operation::GuardianCeremony,
        1,
        async move |keys, name| {
            let guardian = super::guardian::Guardian::load(&keys, &name).await?;
            json(StatusCode::OK, &guardian.status())
        },
    )
    .await
}

/// Shares backups.
///
/// Given every guardian's public record (this one's included), checks every Schnorr proof and
/// answers one backup per other guardian, encrypted to it. A bad proof refuses the ceremony
/// (400 naming `public_records[i]` and the guardian). The same records again answer the same
/// backups; other records afterwards are 409.
#[utoipa::path(post, path = "/v1/guardians/{guardian}/backups", tag = "guardians", operation_id = "share_backups",
    params(GuardianPath), request_body = ShareBackups,
    responses((status = 200, description = "One backup per other guardian", body = BackupsAnswer), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn share_backups(call: Call, body: Body<ShareBackups>) -> Answer {
    ceremony_step(call, body, backups::share).await
}

/// Verifies backups addressed to this guardian.
///
/// Answers a verification per backup, in the order sent. A backup that fails is reported
/// (`verified: false`, naming its sender) and not kept, so a re-sent one is checked again; a
/// verified one is final. 409 before the guardian shared its own backups.
#[utoipa::path(post, path = "/v1/guardians/{guardian}/verifications", tag = "guardians", operation_id = "verify_backups",
    params(GuardianPath), request_body = VerifyBackups,
    responses((status = 200, description = "A verification per backup", body = VerificationsAnswer), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn verify_backups(call: Call, body: Body<VerifyBackups>) -> Answer {
    ceremony_step(call, body, verify::verify).await
}

/// Finalizes the ceremony.
///
/// Given all n·(n−1) verifications, computes the joint key and signs the ceremony record with
/// the instance's records key. 409, naming what is missing, until every backup to this
/// guardian verified here and every verification is true.
#[utoipa::path(post, path = "/v1/guardians/{guardian}/finalize", tag = "guardians", operation_id = "finalize_guardian",
    params(GuardianPath), request_body = Finalize,
    responses((status = 200, description = "The signed ceremony record", body = CeremonyRecord), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn finalize_guardian(call: Call, body: Body<Finalize>) -> Answer {
    ceremony_step(call, body, finalize::finalize).await
}

/// Reads the signed ceremony record (409 before finalize).
#[utoipa::path(get, path = "/v1/guardians/{guardian}/ceremony", tag = "guardians", operation_id = "read_ceremony",
    params(GuardianPath),
    responses((status = 200, description = "The signed ceremony record", body = CeremonyRecord), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn read_ceremony(call: Call) -> Answer {
    answer(
        call,
        Operation::GuardianCeremony,
        1,
        async move |keys, name| {
            json(
                StatusCode::OK,
                &finalize::ceremony_record(&keys, &name).await?,
            )
        },
    )
    .await
}

fn items<T>(body: &Body<T>, count: impl Fn(&T) -> usize) -> usize {
    body.as_ref().map_or(1, |body| count(&body.0).max(1))
}

/// Partially decrypts ciphertexts.
///
/// Answers M_i = α^{s_i} and a Chaum–Pedersen proof bound to `extended_base_hash` for each of 1
/// to 1,000 ciphertexts, in order. Every pad and data must be in the group (400 naming
/// `ciphertexts[i].pad`). 409 before finalize.
#[utoipa::path(post, path = "/v1/guardians/{guardian}/decrypt", tag = "guardians", operation_id = "decrypt_shares",
    params(GuardianPath), request_body = DecryptShares,
    responses((status = 200, description = "A partial decryption per ciphertext", body = DecryptionShares), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn decrypt_shares(call: Call, body: Body<DecryptShares>) -> Answer {
    let count = items(&body, |body| body.ciphertexts.len());
    answer(
        call,
        Operation::GuardianDecrypt,
        count,
        async move |keys, name| {
            json(
                StatusCode::OK,
                &decrypt::decrypt(&keys, &name, body?.0).await?,
            )
        },
    )
    .await
}

/// Compensates for a missing guardian.
///
/// Answers α^{P_m(i)} with proofs for each ciphertext, from the backup the missing guardian m
/// sent this one, and the recovery public key g^{P_m(i)} the proofs check against.
#[utoipa::path(post, path = "/v1/guardians/{guardian}/compensate", tag = "guardians", operation_id = "compensate_shares",
    params(GuardianPath), request_body = CompensateShares,
    responses((status = 200, description = "A compensated partial decryption per ciphertext", body = CompensatedShares), GuardianErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn compensate_shares(call: Call, body: Body<CompensateShares>) -> Answer {
    let count = items(&body, |body| body.ciphertexts.len());
    answer(
        call,
        Operation::GuardianDecrypt,
        count,
        async move |keys, name| {
            json(
                StatusCode::OK,
                &decrypt::compensate(&keys, &name, body?.0).await?,
            )
        },
    )
    .await
}

/// Registers the guardian routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/guardians/{guardian}")
            .route(web::post().to(create_guardian))
            .route(web::get().to(read_guardian)),
    )
    .route(
        "/v1/guardians/{guardian}/backups",
        web::post().to(share_backups),
    )
    .route(
        "/v1/guardians/{guardian}/verifications",
        web::post().to(verify_backups),
    )
    .route(
        "/v1/guardians/{guardian}/finalize",
        web::post().to(finalize_guardian),
    )
    .route(
        "/v1/guardians/{guardian}/ceremony",
        web::get().to(read_ceremony),
    )
    .route(
        "/v1/guardians/{guardian}/decrypt",
        web::post().to(decrypt_shares),
    )
    .route(
        "/v1/guardians/{guardian}/compensate",
        web::post().to(compensate_shares),
    );
}
