//! Idempotent retries of mutating requests: the `Idempotency-Key` header of the IETF HTTPAPI
//! draft, with Stripe's semantics. The first request with a key runs; a retry with the same
//! key and the same request gets the stored answer again (`Idempotent-Replayed: true`); the
//! same key with another request is 422, and a retry while the first still runs is 409 with
//! `Retry-After`. Keys are per caller and kept for `idempotency.retention_hours`.
//!
//! The answer is stored by the change's own statement or transaction, so a crash between the
//! commit and the answer leaves a key whose retry replays the answer. A request that ends
//! without a change releases its key, so a retry runs again. Stored answers hold no plaintext
//! PII: a user is kept as its stored row and decrypted again on replay, as any read is.

mod answer;
mod key;
mod prune;
mod store;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use vottery_common::problem::{FieldError, Problem};
use vottery_server::problem::ProblemResponse;

pub use answer::{REPLAYED, Reply};
pub use key::{Fingerprint, HEADER, IdempotencyKey, MAX_KEY_LENGTH, invalid_key};
pub use prune::{prune, spawn_pruning};
pub use store::{ClaimFirst, Completion, KEY_ANSWERED, complete};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::users::actor::Contacts;
use crate::users::service::Ctx;
use crate::users::view;
use store::Taken;

/// A mutating request that carries a valid key, and its fingerprint.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
}

/// Answers a mutating request with `status` and what `run` replies, under the request's key
/// when it has one: claimed first, `run` handed the [`Completion`] its change stores the answer
/// with, and released when `run` fails; or the stored answer replayed, or the key refused.
pub async fn respond(
    ctx: &Ctx<'_>,
    request: Option<KeyedRequest>,
    status: StatusCode,
    run: impl AsyncFnOnce(Option<&Completion>) -> Result<Reply, ApiError>,
) -> Result<HttpResponse, ApiError> {
    answer(ctx, request, status, ClaimAt::OwnStatement, run).await
}

/// As [`respond`], for a change whose first statement claims the key itself
/// ([`Completion::claim_first`]): one statement fewer per request. A request refused before
/// that statement leaves the key as it was.
pub async fn respond_claiming_in_change(
    ctx: &Ctx<'_>,
    request: Option<KeyedRequest>,
    status: StatusCode,
    run: impl AsyncFnOnce(Option<&Completion>) -> Result<Reply, ApiError>,
) -> Result<HttpResponse, ApiError> {
    answer(ctx, request, status, ClaimAt::ChangesFirstStatement, run).await
}

/// Where a request's key is claimed.
enum ClaimAt {
    /// By a statement of its own before the request runs.
    OwnStatement,
    /// By the first statement of the change.
    ChangesFirstStatement,
}

async fn answer(
    ctx: &Ctx<'_>,
    request: Option<KeyedRequest>,
    status: StatusCode,
    claim_at: ClaimAt,
    run: impl AsyncFnOnce(Option<&Completion>) -> Result<Reply, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let Some(request) = request else {
        return Ok(run(None).await?.respond(status));
    };
    let terms = &ctx.state.idempotency;
    let scope = scope_of(ctx.principal);
    let mut completion = Completion::new(
        scope,
        &request.key,
        request.fingerprint,
        status.as_u16(),
        terms,
    );
    if let ClaimAt::OwnStatement = claim_at {
        let taken = {
            let mut conn = ctx.state.pool.get().await.map_err(ApiError::database)?;
            store::claim(&mut conn, &mut completion).await?
        };
        if let Some(taken) = taken {
            return answer_again(ctx, &completion, taken).await;
        }
    }
    match run(Some(&completion)).await {
        Ok(reply) => {
            // The change and its answer are committed; the answer is not yet sent.
            fail::fail_point!("idempotency-answer", |_| std::process::abort());
            Ok(reply.respond(status))
        }
        Err(ApiError::KeyTaken) => {
            // Another request holds the key, or answered it first: this change made nothing
            // (its claim was refused) or was rolled back, and the other's answer is the answer.
            let taken = {
                let mut conn = ctx.state.pool.get().await.map_err(ApiError::database)?;
                store::taken(&mut conn, &completion).await?
            };
            match taken {
                Some(taken) => answer_again(ctx, &completion, taken).await,
                None => Err(ApiError::KeyTaken),
            }
        }
        Err(error) => {
            release(ctx, &completion).await;
            Err(error)
        }
    }
}

/// How many connections releasing a key tries before leaving it to its lease.
const RELEASE_ATTEMPTS: usize = 4;

/// The caller a key belongs to: keys of different callers never meet.
fn scope_of(principal: &Principal) -> String {
    match principal {
        Principal::User(id) => format!("user:{id}"),
        Principal::Service(name) => format!("service:{name}"),
    }
}

/// What a key another request holds or answered gets: its stored answer, or a refusal.
async fn answer_again(
    ctx: &Ctx<'_>,
    completion: &Completion,
    taken: Taken,
) -> Result<HttpResponse, ApiError> {
    if !taken.same_request {
        return Err(reused());
    }
    let Some(status) = taken.status else {
        return Err(in_flight(taken.retry_after));
    };
    let status = StatusCode::from_u16(u16::try_from(status).unwrap_or(500))
        .map_err(|error| ApiError::Internal(error.into()))?;
    let reply = if taken.shows_user {
        Reply::User(Box::new(stored_user(ctx, completion).await?))
    } else {
        taken.body.map_or(Reply::Empty, Reply::Json)
    };
    Ok(reply.replay(status))
}

/// The user a stored answer shows, decrypted and checked as a read of its row is.
async fn stored_user(
    ctx: &Ctx<'_>,
    completion: &Completion,
) -> Result<vottery_common::users::UserView, ApiError> {
    let row = {
        let mut conn = ctx.state.pool.get().await.map_err(ApiError::database)?;
        store::answered_user(&mut conn, completion).await?
    };
    let row = row.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored answer vanished")))?;
    let today = chrono::Utc::now().date_naive();
    view::render(
        &ctx.state.vault,
        &ctx.meta.request_id,
        std::slice::from_ref(&row),
        Contacts::Shown,
        today,
    )
    .await?
    .pop()
    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a stored user rendered to nothing")))
}

/// Frees the key of a request that changed nothing (best effort: until it is freed, a retry
/// waits for the lease to end).
async fn release(ctx: &Ctx<'_>, completion: &Completion) {
    // A request that failed because the database dropped its connection may meet other
    // dropped connections in the pool: each attempt checks out another one.
    for _ in 0..RELEASE_ATTEMPTS {
        let released = match ctx.state.pool.get().await {
            Ok(mut conn) => store::release(&mut conn, completion).await,
            Err(error) => {
                tracing::warn!(error = %ApiError::database(error), "could not release an idempotency key");
                return;
            }
        };
        match released {
            Ok(()) => return,
            Err(error) if vottery_server::db::is_connection_lost(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, "could not release an idempotency key");
                return;
            }
        }
    }
    tracing::warn!("could not release an idempotency key: the database keeps dropping connections");
}

/// 409: the key's first request is still running.
fn in_flight(retry_after: i64) -> ApiError {
    let problem = Problem::new(
        "idempotency-key-in-use",
        "Conflict",
        409,
        "a request with this Idempotency-Key is still being processed; retry with the same key once it ends",
    )
    .with_errors(vec![FieldError::new(HEADER, "is in use by a request that is still running")]);
    ApiError::Problem(
        ProblemResponse::new(problem).retry_after(u64::try_from(retry_after).unwrap_or(1)),
    )
}

/// 422: the key was used with another request.
fn reused() -> ApiError {
    let problem = Problem::new(
        "idempotency-key-reused",
        "Unprocessable content",
        422,
        "this Idempotency-Key was used with a different request (method, path or body); send a new key with a new request",
    )
    .with_errors(vec![FieldError::new(HEADER, "was used with a different request")]);
    ApiError::Problem(ProblemResponse::new(problem))
}
