//! ElectionGuard guardians hosted by this instance: each runs the key ceremony over HTTP with
//! the other guardians' instances (through a mediator that holds nothing secret) and answers
//! partial decryptions. A guardian's polynomial and the coordinates it receives are key material
//! like any other: sealed under the instance's barrier, opened only in memory for the step that
//! needs them, zeroized after, never logged or answered.
//!
//! * [`routes`]: the thin HTTP handlers under `/v1/guardians/{guardian}`.
//! * [`create`], [`backups`], [`verify`], [`finalize`]: the ceremony's steps, each idempotent,
//!   each write in one transaction, nothing stored on a refused request.
//! * [`decrypt`]: partial and compensated decryptions.
//! * [`record`]: the signed ceremony record.
//! * [`input`], [`body`]: what a request must be; [`error`]: how a refusal is answered.
//! * [`guardian`], [`store`], [`secrets`]: the stored guardian, its queries and its sealed secrets.

pub mod backups;
pub mod body;
pub mod create;
pub mod decrypt;
pub mod error;
pub mod finalize;
pub mod guardian;
pub mod input;
pub mod record;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod verify;

use serde::Serialize;

use self::error::GuardianError;

/// Runs CPU-bound guardian work (big-integer arithmetic, sealing) off the async runtime.
pub async fn blocking<T, F>(work: F) -> Result<T, GuardianError>
where
    F: FnOnce() -> Result<T, GuardianError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

/// A public value as stored in a JSONB column.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<serde_json::Value, GuardianError> {
    serde_json::to_value(value)
        .map_err(|error| GuardianError::Internal(format!("serialising a public value: {error}")))
}
