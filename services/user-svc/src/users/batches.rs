//! What the batch commands (`encrypt-existing`, `rewrap`) share: their options, errors, progress
//! and tally, and the driver of `rewrap`: rows taken in id order a batch at a time (keyset
//! pagination on the id), each batch locked, changed, signed and committed with its audit rows
//! in one transaction, with progress reported after each. `encrypt-existing` pipelines its
//! batches instead (see [`super::backfill`]).

use std::fmt;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::actor::Actor;
use super::db as users_db;
use crate::audit::{AuditEvent, RequestMeta};
use crate::error::ApiError;
use crate::record::{OwnedColumns, UserRow, record_digest};
use crate::startup::AppState;
use crate::vault::Vault;

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 200;
/// Most rows per batch: five PII columns a row stay within security-svc's 5,000 batch items,
/// and a batch's statements within PostgreSQL's limits.
pub const MAX_BATCH_SIZE: usize = 1_000;
/// How a run proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Rows locked, encrypted and committed together.
    pub batch_size: usize,
    /// Stop after this many batches (work in slices; a later run resumes).
    pub max_batches: Option<usize>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            max_batches: None,
        }
    }
}

/// Why a run did not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("batch size must be between 1 and {MAX_BATCH_SIZE}")]
    BatchSize,
    #[error("security-svc is sealed: unseal it first; nothing was changed")]
    Sealed,
    #[error("security-svc is unreachable ({0}); nothing was changed")]
    Unreachable(String),
    /// What the run needs to know before its first batch could not be read.
    #[error("could not prepare the run; nothing was changed: {0}")]
    Start(#[source] ApiError),
    /// A batch failed; it was rolled back and every batch before it is committed.
    #[error("a batch failed and was rolled back (earlier batches are kept; rerun to resume): {}", with_cause(.0))]
    Batch(#[source] ApiError),
}

/// An error as an operator reads it: an unavailable dependency names why (timed out, refused).
fn with_cause(error: &ApiError) -> String {
    match error {
        ApiError::Unavailable { dependency, cause } if !cause.is_empty() => {
            format!("{dependency} is unavailable ({cause})")
        }
        other => other.to_string(),
    }
}

/// Where a run stands, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The command reporting: `encrypt-existing` or `rewrap`.
    pub command: &'static str,
    /// Rows handled so far (upgraded or skipped).
    pub done: u64,
    /// Rows to do when the run started.
    pub total: u64,
    pub batches: usize,
    pub elapsed: Duration,
}

impl Progress {
    /// Rows handled per second so far.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.done as f64 / seconds
        } else {
            0.0
        }
    }

    /// The time the remaining rows take at the rate so far.
    pub fn time_left(&self) -> Option<Duration> {
        let rate = self.rate();
        (rate > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / rate))
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = if self.total == 0 {
            100.0
        } else {
            self.done as f64 * 100.0 / self.total as f64
        };
        write!(
            f,
            "{}: {}/{} rows ({percent:.1}%), {:.0} rows/s",
            self.command,
            self.done,
            self.total,
            self.rate()
        )?;
        match self.time_left() {
            Some(left) => write!(f, ", about {}s left", left.as_secs()),
            None => Ok(()),
        }
    }
}

/// Refuses a batch size security-svc could not take, and a security-svc that is sealed or down.
pub(super) async fn ready(state: &AppState, options: BatchOptions) -> Result<(), BatchError> {
    if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
        return Err(BatchError::BatchSize);
    }
    ensure_unsealed(&state.vault).await
}

/// What one committed batch did: the last id it took (`None`: no row was left), how many rows
/// it changed, and the rows it left as they were.
pub(super) struct BatchOutcome<T> {
    pub last_id: Option<i32>,
    pub done: u64,
    pub left: Vec<T>,
}

/// What a run of batches did.
pub(super) struct Run<T> {
    /// Rows to do when the run started.
    pub total: u64,
    pub done: u64,
    pub left: Vec<T>,
    /// Rows still to do when the run ended (the ones left included).
    pub remaining: u64,
    pub batches: usize,
    pub stopped_early: bool,
    pub elapsed: Duration,
}

/// Runs `next_batch` after the last id of the one before until no row is left (or
/// `max_batches`), with `count` of the rows to do before and after, and `on_progress` after
/// each batch.
pub(super) async fn run_in_batches<T>(
    state: &AppState,
    command: &'static str,
    options: BatchOptions,
    mut count: impl AsyncFnMut(&mut AsyncPgConnection) -> QueryResult<u64>,
    mut next_batch: impl AsyncFnMut(
        &mut AsyncPgConnection,
        i32,
        usize,
    ) -> Result<BatchOutcome<T>, ApiError>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Run<T>, BatchError> {
    let started = Instant::now();
    let mut conn = state
        .pool
        .get()
        .await
        .map_err(|error| BatchError::Batch(ApiError::database(error)))?;
    let failed = |error: diesel::result::Error| BatchError::Batch(error.into());
    let mut run = Run::starting(count(&mut conn).await.map_err(failed)?);
    let mut after_id = 0;
    loop {
        if options.max_batches.is_some_and(|max| run.batches >= max) {
            run.stopped_early = true;
            break;
        }
        let batch = next_batch(&mut conn, after_id, options.batch_size)
            .await
            .map_err(BatchError::Batch)?;
        let Some(last_id) = batch.last_id else {
            break;
        };
        after_id = last_id;
        run.add(batch);
        on_progress(&run.progress(command, started));
    }
    let remaining = count(&mut conn).await.map_err(failed)?;
    Ok(run.finish(remaining, started))
}

impl<T> Run<T> {
    /// A run with `total` rows to do and none done.
    pub(super) fn starting(total: u64) -> Self {
        Run {
            total,
            done: 0,
            left: Vec::new(),
            remaining: total,
            batches: 0,
            stopped_early: false,
            elapsed: Duration::ZERO,
        }
    }

    /// Counts a committed batch.
    pub(super) fn add(&mut self, batch: BatchOutcome<T>) {
        self.batches += 1;
        self.done += batch.done;
        self.left.extend(batch.left);
    }

    /// Where the run stands.
    pub(super) fn progress(&self, command: &'static str, started: Instant) -> Progress {
        Progress {
            command,
            done: self.done + self.left.len() as u64,
            total: self.total,
            batches: self.batches,
            elapsed: started.elapsed(),
        }
    }

    /// The run as it ended, with `remaining` rows still to do: stopped early only if some of
    /// them were not left on purpose.
    pub(super) fn finish(mut self, remaining: u64, started: Instant) -> Self {
        self.remaining = remaining;
        self.stopped_early &= remaining > self.left.len() as u64;
        self.elapsed = started.elapsed();
        self
    }
}

/// Refuses to start unless security-svc answers and is unsealed.
async fn ensure_unsealed(vault: &Vault) -> Result<(), BatchError> {
    match vault.client().call(None).seal_status().await {
        Ok(status) if status.sealed => Err(BatchError::Sealed),
        Ok(_) => Ok(()),
        Err(error) => Err(BatchError::Unreachable(error.to_string())),
    }
}

/// A locked row, its new columns (unsigned), and the names of the columns that changed.
pub(super) type RowChange<'a> = (&'a UserRow, OwnedColumns, Vec<String>);

/// Signs the changed rows in one call and writes each with its audit row (by `actor`, as
/// `action`), in the caller's transaction; returns how many were written.
pub(super) async fn sign_and_write(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    actor: &str,
    action: &str,
    changes: Vec<RowChange<'_>>,
) -> Result<u64, ApiError> {
    let digests: Vec<[u8; 32]> = changes
        .iter()
        .map(|(row, owned, _)| record_digest(row.id, &row.created_at, owned))
        .collect();
    let signatures = if digests.is_empty() {
        Vec::new()
    } else {
        vault.sign(&meta.request_id, &digests).await?
    };
    if signatures.len() != digests.len() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "security-svc returned a different number of signatures than records sent"
        )));
    }
    let label = Actor::Service(actor.into()).label();
    let written = changes.len() as u64;
    for ((row, mut owned, changed_fields), signature) in changes.into_iter().zip(signatures) {
        owned.record_signature = Some(signature);
        let event = AuditEvent {
            user_id: Some(row.id),
            actor_id: None,
            actor_label: &label,
            action,
            changed_fields,
            success: true,
            reason: None,
            facts: None,
            request: meta,
            events: Vec::new(),
        };
        let stored =
            users_db::update_if_version(conn, row.id, row.owned.row_version, &owned, &event, None)
                .await?;
        if stored.is_none() {
            // The row is locked by this transaction: it cannot have moved on.
            return Err(ApiError::Internal(anyhow::anyhow!(
                "user {} changed while locked",
                row.id
            )));
        }
    }
    Ok(written)
}

/// The request metadata a batch's audit rows carry: a fresh request id naming the command.
pub(super) fn batch_meta(command: &str) -> RequestMeta {
    RequestMeta {
        request_id: format!("{command}-{}", uuid::Uuid::new_v4()),
        ip: None,
        user_agent: Some(format!("user-svc {command}")),
    }
}

impl<T> BatchOutcome<T> {
    /// No row was left to take.
    pub(super) fn none_left() -> Self {
        Self {
            last_id: None,
            done: 0,
            left: Vec::new(),
        }
    }
}
