//! `user-svc encrypt-existing`: upgrades the rows the customer's tables held before user-svc
//! (plaintext PII, `pii_encrypted` false) in place, exactly as the first write through the
//! service would: PII encrypted and bound to its row and column, blind indexes computed, the
//! record signed, the change audited.
//!
//! Rows are taken in id order, a batch at a time (keyset pagination on the id), each batch
//! locked, upgraded with one encrypt, one hmac and one sign call, and committed with its audit
//! rows in one transaction: a batch lands whole or not at all. Only rows still holding
//! plaintext are selected, so nothing is encrypted twice and a rerun resumes where a stopped
//! run left off.
//!
//! A row whose email or phone number has the blind index of another user's (two legacy spellings
//! of one address, or a contact already registered through the service) cannot be stored
//! encrypted: the unique blind index would refuse it. Such rows are left plaintext, reported by
//! id (never by value) and skipped; the rest of the run goes on. They stay readable and are
//! retried by the next run once an operator has resolved the duplicate.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::actor::Actor;
use super::service::{index_input, legacy_values, set_column};
use crate::audit::{AuditEvent, RequestMeta};
use crate::error::ApiError;
use crate::record::{OwnedColumns, UserRow, record_digest};
use crate::schema::vottery_users as users;
use crate::startup::AppState;
use crate::users::db as users_db;
use crate::vault::{PiiColumn, PlainField, Vault, key_version};

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 200;
/// Most rows per batch: five PII columns a row stay within security-svc's 5,000 batch items.
pub const MAX_BATCH_SIZE: usize = 1_000;
/// Who the audit trail names as the actor.
const ACTOR: &str = "encrypt-existing";
/// The audit action of an upgraded row.
pub const AUDIT_ACTION: &str = "user.encrypt_existing";

/// How a run proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillOptions {
    /// Rows locked, encrypted and committed together.
    pub batch_size: usize,
    /// Stop after this many batches (work in slices; a later run resumes).
    pub max_batches: Option<usize>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            max_batches: None,
        }
    }
}

/// Why a run did not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
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
    #[error("a batch failed and was rolled back (earlier batches are kept; rerun to resume): {0}")]
    Batch(#[source] ApiError),
}

/// Why a plaintext row was left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its email has the blind index of `other`'s: a stored user, or a row of the same batch
    /// with a lower id, which was upgraded.
    DuplicateEmail { other: i32 },
    /// Its phone number has the blind index of another user's.
    DuplicatePhone { other: i32 },
    /// Flagged plaintext, yet a column already holds a `vault:v<N>:` value: encrypting it
    /// again would hide the stored ciphertext, so it is left for an operator to inspect.
    LooksEncrypted,
}

/// A row left plaintext, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedRow {
    pub user_id: i32,
    pub reason: SkipReason,
}

impl fmt::Display for SkippedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.user_id;
        match self.reason {
            SkipReason::DuplicateEmail { other } => write!(
                f,
                "user {id} left plaintext: its email is also user {other}'s (same blind index)"
            ),
            SkipReason::DuplicatePhone { other } => write!(
                f,
                "user {id} left plaintext: its phone number is also user {other}'s (same blind index)"
            ),
            SkipReason::LooksEncrypted => write!(
                f,
                "user {id} left as is: marked plaintext but already holds ciphertext"
            ),
        }
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

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Rows that held plaintext when the run started.
    pub total: u64,
    pub encrypted: u64,
    pub skipped: Vec<SkippedRow>,
    /// Rows still holding plaintext when the run ended (skipped ones included).
    pub remaining: u64,
    pub batches: usize,
    /// The run stopped at `max_batches` with rows left to do.
    pub stopped_early: bool,
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "encrypt-existing: encrypted {} of {} plaintext rows in {} batches ({:.1}s); {} skipped; {} still plaintext",
            self.encrypted,
            self.total,
            self.batches,
            self.elapsed.as_secs_f64(),
            self.skipped.len(),
            self.remaining
        )?;
        if self.stopped_early {
            write!(f, " (stopped after the batch limit; rerun to resume)")?;
        }
        Ok(())
    }
}

/// Encrypts, indexes and signs every row still holding plaintext, batch by batch, calling
/// `on_progress` after each batch. Refuses to start while security-svc is sealed or down.
pub async fn encrypt_existing(
    state: &AppState,
    options: BackfillOptions,
    on_progress: impl FnMut(&Progress),
) -> Result<Summary, BackfillError> {
    ready(state, options).await?;
    let run = run_in_batches(
        state,
        ACTOR,
        options,
        async |conn| count_plaintext(conn).await,
        async |conn, after_id, limit| upgrade_next_batch(&state.vault, conn, after_id, limit).await,
        on_progress,
    )
    .await?;
    Ok(Summary {
        total: run.total,
        encrypted: run.done,
        skipped: run.left,
        remaining: run.remaining,
        batches: run.batches,
        stopped_early: run.stopped_early,
        elapsed: run.elapsed,
    })
}

/// Refuses a batch size security-svc could not take, and a security-svc that is sealed or down.
pub(super) async fn ready(state: &AppState, options: BackfillOptions) -> Result<(), BackfillError> {
    if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
        return Err(BackfillError::BatchSize);
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
    options: BackfillOptions,
    mut count: impl AsyncFnMut(&mut AsyncPgConnection) -> QueryResult<u64>,
    mut next_batch: impl AsyncFnMut(
        &mut AsyncPgConnection,
        i32,
        usize,
    ) -> Result<BatchOutcome<T>, ApiError>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Run<T>, BackfillError> {
    let started = Instant::now();
    let mut conn = state
        .pool
        .get()
        .await
        .map_err(|error| BackfillError::Batch(ApiError::database(error)))?;
    let total = count(&mut conn)
        .await
        .map_err(|error| BackfillError::Batch(error.into()))?;
    let mut run = Run {
        total,
        done: 0,
        left: Vec::new(),
        remaining: total,
        batches: 0,
        stopped_early: false,
        elapsed: Duration::ZERO,
    };
    let mut after_id = 0;
    loop {
        if options.max_batches.is_some_and(|max| run.batches >= max) {
            run.stopped_early = true;
            break;
        }
        let batch = next_batch(&mut conn, after_id, options.batch_size)
            .await
            .map_err(BackfillError::Batch)?;
        let Some(last_id) = batch.last_id else {
            break;
        };
        after_id = last_id;
        run.batches += 1;
        run.done += batch.done;
        run.left.extend(batch.left);
        on_progress(&Progress {
            command,
            done: run.done + run.left.len() as u64,
            total,
            batches: run.batches,
            elapsed: started.elapsed(),
        });
    }
    run.remaining = count(&mut conn)
        .await
        .map_err(|error| BackfillError::Batch(error.into()))?;
    run.stopped_early &= run.remaining > run.left.len() as u64;
    run.elapsed = started.elapsed();
    Ok(run)
}

/// Refuses to start unless security-svc answers and is unsealed.
async fn ensure_unsealed(vault: &Vault) -> Result<(), BackfillError> {
    match vault.client().call(None).seal_status().await {
        Ok(status) if status.sealed => Err(BackfillError::Sealed),
        Ok(_) => Ok(()),
        Err(error) => Err(BackfillError::Unreachable(error.to_string())),
    }
}

/// How many rows still hold plaintext PII.
async fn count_plaintext(conn: &mut AsyncPgConnection) -> QueryResult<u64> {
    users::table
        .filter(users::pii_encrypted.eq(false))
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|count| count.max(0) as u64)
}

/// The next rows still holding plaintext after `after_id`, locked until the transaction ends.
/// A row upgraded by a concurrent write while this waits for its lock no longer matches and is
/// left out.
async fn lock_plaintext_batch(
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::pii_encrypted.eq(false))
        .filter(users::id.gt(after_id))
        .order(users::id.asc())
        .limit(limit as i64)
        .for_update()
        .select(UserRow::as_select())
        .load(conn)
        .await
}

/// Stored rows (other than the batch's own, which have none yet) holding any of these blind
/// indexes: `(id, email_bidx, phone_bidx)`.
async fn rows_holding_indexes(
    conn: &mut AsyncPgConnection,
    email_indexes: &[&str],
    phone_indexes: &[&str],
) -> QueryResult<Vec<(i32, Option<String>, Option<String>)>> {
    users::table
        .filter(
            users::email_bidx
                .eq_any(email_indexes)
                .or(users::phone_bidx.eq_any(phone_indexes)),
        )
        .select((users::id, users::email_bidx, users::phone_bidx))
        .load(conn)
        .await
}

/// A legacy row's upgrade, planned: its plaintext values and blind-index inputs.
struct Upgrade<'a> {
    row: &'a UserRow,
    values: Vec<(PiiColumn, String)>,
    email_index_input: String,
    phone_index_input: String,
}

impl<'a> Upgrade<'a> {
    fn plan(row: &'a UserRow) -> Self {
        let values = legacy_values(row)
            .into_iter()
            .filter_map(|(column, value)| value.map(|value| (column, value)))
            .collect();
        Self {
            row,
            values,
            email_index_input: index_input(PiiColumn::Email, &row.owned.sngine_email),
            phone_index_input: index_input(PiiColumn::Phone, &row.owned.sngine_phone),
        }
    }

    fn looks_encrypted(&self) -> bool {
        self.values
            .iter()
            .any(|(_, value)| key_version(value).is_some())
    }
}

/// Locks, upgrades and commits the next batch in one transaction.
async fn upgrade_next_batch(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> Result<BatchOutcome<SkippedRow>, ApiError> {
    let meta = RequestMeta {
        request_id: format!("encrypt-existing-{}", uuid::Uuid::new_v4()),
        ip: None,
        user_agent: Some("user-svc encrypt-existing".into()),
    };
    conn.transaction::<_, ApiError, _>(async |conn| {
        let rows = lock_plaintext_batch(conn, after_id, limit).await?;
        let Some(last) = rows.last() else {
            return Ok(BatchOutcome {
                last_id: None,
                done: 0,
                left: Vec::new(),
            });
        };
        let last_id = last.id;
        let (encrypted, skipped) = upgrade_rows(vault, conn, &meta, &rows).await?;
        Ok(BatchOutcome {
            last_id: Some(last_id),
            done: encrypted,
            left: skipped,
        })
    })
    .await
}

/// Encrypts, indexes, signs and writes the locked rows that can be upgraded, with an audit row
/// each; returns how many were written and which were skipped.
async fn upgrade_rows(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    rows: &[UserRow],
) -> Result<(u64, Vec<SkippedRow>), ApiError> {
    let mut skipped = Vec::new();
    let mut upgrades = Vec::with_capacity(rows.len());
    for upgrade in rows.iter().map(Upgrade::plan) {
        if upgrade.looks_encrypted() {
            skipped.push(SkippedRow {
                user_id: upgrade.row.id,
                reason: SkipReason::LooksEncrypted,
            });
        } else {
            upgrades.push(upgrade);
        }
    }

    // One encrypt call for every value of the batch and one hmac call for every index.
    let plain_fields: Vec<PlainField<'_>> = upgrades
        .iter()
        .flat_map(|upgrade| {
            upgrade.values.iter().map(|(column, value)| PlainField {
                user_id: upgrade.row.id,
                column: *column,
                value,
            })
        })
        .collect();
    let index_inputs: Vec<&str> = upgrades
        .iter()
        .flat_map(|upgrade| {
            [
                upgrade.email_index_input.as_str(),
                upgrade.phone_index_input.as_str(),
            ]
        })
        .collect();
    let (ciphertexts, indexes) = tokio::try_join!(
        vault.encrypt(&meta.request_id, &plain_fields),
        vault.blind_indexes(&meta.request_id, &index_inputs),
    )?;
    if ciphertexts.len() != plain_fields.len() || indexes.len() != index_inputs.len() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "security-svc returned a different number of results than values sent"
        )));
    }

    let duplicates = find_duplicates(conn, &upgrades, &indexes).await?;
    let mut ciphertexts = ciphertexts.into_iter();
    let mut indexes = indexes.chunks_exact(2);
    let mut upgraded = Vec::with_capacity(upgrades.len());
    for upgrade in &upgrades {
        let row_ciphertexts: Vec<String> =
            ciphertexts.by_ref().take(upgrade.values.len()).collect();
        let row_indexes = indexes.next().unwrap_or_default();
        if let Some(reason) = duplicates.get(&upgrade.row.id) {
            skipped.push(SkippedRow {
                user_id: upgrade.row.id,
                reason: *reason,
            });
            continue;
        }
        let mut owned = upgrade.row.owned.clone();
        for ((column, _), ciphertext) in upgrade.values.iter().zip(row_ciphertexts) {
            set_column(&mut owned, *column, Some(ciphertext));
        }
        owned.email_bidx = row_indexes.first().cloned();
        owned.phone_bidx = row_indexes.get(1).cloned();
        owned.pii_encrypted = true;
        owned.row_version = upgrade.row.owned.row_version + 1;
        owned.record_signature = None;
        upgraded.push((upgrade, owned));
    }

    let changes = upgraded
        .into_iter()
        .map(|(upgrade, owned)| {
            let fields = upgrade
                .values
                .iter()
                .map(|(column, _)| column.column().to_owned())
                .chain(["email_bidx".to_owned(), "phone_bidx".to_owned()])
                .collect();
            (upgrade.row, owned, fields)
        })
        .collect();
    let encrypted = sign_and_write(vault, conn, meta, ACTOR, AUDIT_ACTION, changes).await?;
    Ok((encrypted, skipped))
}

/// A locked row, its new columns (unsigned), and the names of the columns that changed.
pub(super) type Change<'a> = (&'a UserRow, OwnedColumns, Vec<String>);

/// Signs the changed rows in one call and writes each with its audit row (by `actor`, as
/// `action`), in the caller's transaction; returns how many were written.
pub(super) async fn sign_and_write(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    actor: &str,
    action: &str,
    changes: Vec<Change<'_>>,
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
        };
        let stored =
            users_db::update_if_version(conn, row.id, row.owned.row_version, &owned, &event)
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

/// The rows of a batch whose blind index another user already holds: a stored row, or a row of
/// this batch with a lower id (which is upgraded; the later ones are skipped).
async fn find_duplicates(
    conn: &mut AsyncPgConnection,
    upgrades: &[Upgrade<'_>],
    indexes: &[String],
) -> Result<HashMap<i32, SkipReason>, ApiError> {
    let email_indexes: Vec<&str> = indexes.iter().step_by(2).map(String::as_str).collect();
    let phone_indexes: Vec<&str> = indexes
        .iter()
        .skip(1)
        .step_by(2)
        .map(String::as_str)
        .collect();
    let mut email_owner: HashMap<&str, i32> = HashMap::new();
    let mut phone_owner: HashMap<&str, i32> = HashMap::new();
    let stored = rows_holding_indexes(conn, &email_indexes, &phone_indexes).await?;
    for (id, email, phone) in &stored {
        if let Some(email) = email {
            email_owner.insert(email.as_str(), *id);
        }
        if let Some(phone) = phone {
            phone_owner.insert(phone.as_str(), *id);
        }
    }
    let mut duplicates = HashMap::new();
    for ((upgrade, email), phone) in upgrades.iter().zip(&email_indexes).zip(&phone_indexes) {
        let id = upgrade.row.id;
        if let Some(other) = email_owner.get(email) {
            duplicates.insert(id, SkipReason::DuplicateEmail { other: *other });
        } else if let Some(other) = phone_owner.get(phone) {
            duplicates.insert(id, SkipReason::DuplicatePhone { other: *other });
        } else {
            email_owner.insert(email, id);
            phone_owner.insert(phone, id);
        }
    }
    Ok(duplicates)
}
