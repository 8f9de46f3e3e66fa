//! `user-svc encrypt-existing`: upgrades the rows the customer's tables held before user-svc
//! (plaintext PII, `pii_encrypted` false) in place, exactly as the first write through the
//! service would: PII encrypted and bound to its row and column, blind indexes computed, the
//! record signed, the change audited.
//!
//! Rows are taken in id order, a batch at a time (keyset pagination on the id), in two stages
//! that overlap: while one batch is written, the next is read and sealed. Sealing a batch is
//! its encrypt calls (a few rows each, a few at a time, so that no call nears security-svc's
//! timeout), one hmac call and one sign call. Writing it is one statement: every row that is
//! unchanged since it was read (the same fingerprint of its whole stored text) is updated and
//! its audit row appended to its chain, so a batch lands whole or not at all, and a row changed
//! meanwhile (by user-svc or by the customer's own application) is left as it now is, never
//! overwritten; the next run takes it again if it still holds plaintext. Only rows still
//! holding plaintext are selected, so nothing is encrypted twice and a rerun resumes where a
//! stopped run left off.
//!
//! A row whose email or phone number has the blind index of another user's (two legacy spellings
//! of one address, or a contact already registered through the service) cannot be stored
//! encrypted: the unique blind index would refuse it. Such rows are left plaintext, reported by
//! id (never by value) and skipped; the rest of the run goes on. They stay readable and are
//! retried by the next run once an operator has resolved the duplicate.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use futures_util::{StreamExt, TryStreamExt};

use super::actor::Actor;
use super::batches::{BatchError, BatchOptions, BatchOutcome, Progress, Run, batch_meta, ready};
use super::db::batches::{self as db, PlaintextRow, Upgraded};
use super::pii::{IndexedContact, legacy_values, set_column};
use crate::audit::{AuditEvent, RequestMeta};
use crate::error::ApiError;
use crate::record::{OwnedColumns, record_digest};
use crate::startup::AppState;
use crate::vault::{PiiColumn, PlainField, Vault, key_version};

/// Who the audit trail names as the actor.
const ACTOR: &str = "encrypt-existing";
/// The audit action of an upgraded row.
pub const AUDIT_ACTION: &str = "user.encrypt_existing";

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

/// Rows per encrypt call: at most five values each, and each row's context key may be new (made
/// and stored by security-svc on first use), so a call stays far inside the client's timeout
/// whatever the batch size.
const ROWS_PER_ENCRYPT_CALL: usize = 50;
/// Encrypt calls of one batch in flight at once.
const ENCRYPT_CALLS_IN_FLIGHT: usize = 4;

/// Encrypts, indexes and signs every row still holding plaintext, batch by batch, calling
/// `on_progress` after each batch. Refuses to start while security-svc is sealed or down.
pub async fn encrypt_existing(
    state: &AppState,
    options: BatchOptions,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Summary, BatchError> {
    ready(state, options).await?;
    let started = Instant::now();
    let connection = async || {
        state
            .pool
            .get()
            .await
            .map_err(|error| BatchError::Batch(ApiError::database(error)))
    };
    // One connection writes batch N while the other reads batch N + 1.
    let (mut writer, mut reader) = (connection().await?, connection().await?);
    let failed = |error: diesel::result::Error| BatchError::Batch(error.into());
    let mut run = Run::starting(db::count_plaintext(&mut writer).await.map_err(failed)?);
    let vault = &state.vault;
    let size = options.batch_size;
    let mut next = seal_next_batch(vault, &mut reader, 0, size)
        .await
        .map_err(BatchError::Batch)?;
    loop {
        if options.max_batches.is_some_and(|max| run.batches >= max) {
            run.stopped_early = true;
            break;
        }
        let Some(batch) = next else {
            break;
        };
        let last = options
            .max_batches
            .is_some_and(|max| run.batches + 1 >= max);
        let (written, sealed) = tokio::join!(write_batch(&mut writer, &batch), async {
            if last {
                Ok(None)
            } else {
                seal_next_batch(vault, &mut reader, batch.last_id, size).await
            }
        });
        run.add(written.map_err(BatchError::Batch)?);
        on_progress(&run.progress(ACTOR, started));
        next = sealed.map_err(BatchError::Batch)?;
    }
    let remaining = db::count_plaintext(&mut writer).await.map_err(failed)?;
    let run = run.finish(remaining, started);
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

/// A legacy row's upgrade, planned: its plaintext values and blind-index inputs.
struct Upgrade<'a> {
    read: &'a PlaintextRow,
    values: Vec<(PiiColumn, String)>,
    email_index_input: String,
    phone_index_input: String,
}

impl<'a> Upgrade<'a> {
    fn plan(read: &'a PlaintextRow) -> Self {
        let row = &read.row;
        let values = legacy_values(row)
            .into_iter()
            .filter_map(|(column, value)| value.map(|value| (column, value)))
            .collect();
        Self {
            read,
            values,
            email_index_input: IndexedContact::Email.legacy_index_input(&row.owned),
            phone_index_input: IndexedContact::Phone.legacy_index_input(&row.owned),
        }
    }

    fn id(&self) -> i32 {
        self.read.row.id
    }

    /// The columns an upgrade writes: its encrypted values and both blind indexes.
    fn changed_fields(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(column, _)| column.column().to_owned())
            .chain(["email_bidx".to_owned(), "phone_bidx".to_owned()])
            .collect()
    }

    fn looks_encrypted(&self) -> bool {
        self.values
            .iter()
            .any(|(_, value)| key_version(value).is_some())
    }

    /// The values to encrypt, each bound to this row and its column.
    fn plain_fields(&self) -> impl Iterator<Item = PlainField<'_>> {
        self.values.iter().map(|(column, value)| PlainField {
            user_id: self.id(),
            column: *column,
            value,
        })
    }
}

/// A row ready to be written: its new columns, signed, and what its audit row names.
struct SealedRow {
    id: i32,
    created_at: Option<chrono::NaiveDateTime>,
    fingerprint: String,
    owned: OwnedColumns,
    changed_fields: Vec<String>,
}

/// A batch read and sealed, not yet written.
struct SealedBatch {
    meta: RequestMeta,
    /// The last id read: the next batch starts after it.
    last_id: i32,
    rows: Vec<SealedRow>,
    /// Rows left as they are because they already hold ciphertext.
    skipped: Vec<SkippedRow>,
}

/// Reads the next batch after `after_id` and seals it: every value encrypted, both indexes
/// computed, every record signed; `None` when no row is left.
async fn seal_next_batch(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> Result<Option<SealedBatch>, ApiError> {
    let rows = db::plaintext_batch(conn, after_id, limit).await?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let meta = batch_meta(ACTOR);
    let (upgrades, skipped) = plan_upgrades(&rows);
    let (ciphertexts, indexes) = tokio::try_join!(
        encrypt_values(vault, &meta, &upgrades),
        blind_indexes(vault, &meta, &upgrades),
    )?;
    let mut sealed = upgraded_columns(&upgrades, ciphertexts, indexes);
    sign(vault, &meta, &mut sealed).await?;
    Ok(Some(SealedBatch {
        meta,
        last_id: last.row.id,
        rows: sealed,
        skipped,
    }))
}

/// The upgrades of a batch's rows, and the rows skipped because they already hold ciphertext.
fn plan_upgrades(rows: &[PlaintextRow]) -> (Vec<Upgrade<'_>>, Vec<SkippedRow>) {
    let mut skipped = Vec::new();
    let mut upgrades = Vec::with_capacity(rows.len());
    for upgrade in rows.iter().map(Upgrade::plan) {
        if upgrade.looks_encrypted() {
            skipped.push(SkippedRow {
                user_id: upgrade.id(),
                reason: SkipReason::LooksEncrypted,
            });
        } else {
            upgrades.push(upgrade);
        }
    }
    (upgrades, skipped)
}

/// Every value of every upgrade, encrypted: a few rows a call, a few calls at a time; each
/// row's ciphertexts in the order of its values.
async fn encrypt_values(
    vault: &Vault,
    meta: &RequestMeta,
    upgrades: &[Upgrade<'_>],
) -> Result<Vec<Vec<String>>, ApiError> {
    let calls: Vec<Vec<PlainField<'_>>> = upgrades
        .chunks(ROWS_PER_ENCRYPT_CALL)
        .map(|rows| rows.iter().flat_map(Upgrade::plain_fields).collect())
        .collect();
    let answers: Vec<Vec<String>> = futures_util::stream::iter(&calls)
        .map(|fields| vault.encrypt(&meta.request_id, fields))
        .buffered(ENCRYPT_CALLS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut ciphertexts = answers.into_iter().flatten();
    let by_row: Vec<Vec<String>> = upgrades
        .iter()
        .map(|upgrade| ciphertexts.by_ref().take(upgrade.values.len()).collect())
        .collect();
    let complete = ciphertexts.next().is_none()
        && by_row
            .iter()
            .zip(upgrades)
            .all(|(row, upgrade)| row.len() == upgrade.values.len());
    if !complete {
        return Err(count_mismatch());
    }
    Ok(by_row)
}

/// The email and phone blind index of every upgrade, in one call.
async fn blind_indexes(
    vault: &Vault,
    meta: &RequestMeta,
    upgrades: &[Upgrade<'_>],
) -> Result<Vec<[String; 2]>, ApiError> {
    let inputs: Vec<&str> = upgrades
        .iter()
        .flat_map(|upgrade| {
            [
                upgrade.email_index_input.as_str(),
                upgrade.phone_index_input.as_str(),
            ]
        })
        .collect();
    let indexes = vault.blind_indexes(&meta.request_id, &inputs).await?;
    if indexes.len() != inputs.len() {
        return Err(count_mismatch());
    }
    let mut indexes = indexes.into_iter();
    Ok(upgrades
        .iter()
        .filter_map(|_| Some([indexes.next()?, indexes.next()?]))
        .collect())
}

fn count_mismatch() -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "security-svc returned a different number of results than values sent"
    ))
}

/// The new columns of every upgrade (unsigned).
fn upgraded_columns(
    upgrades: &[Upgrade<'_>],
    ciphertexts: Vec<Vec<String>>,
    indexes: Vec<[String; 2]>,
) -> Vec<SealedRow> {
    upgrades
        .iter()
        .zip(ciphertexts)
        .zip(indexes)
        .map(|((upgrade, row_ciphertexts), [email_bidx, phone_bidx])| {
            let stored = &upgrade.read.row.owned;
            let mut owned = stored.clone();
            for ((column, _), ciphertext) in upgrade.values.iter().zip(row_ciphertexts) {
                set_column(&mut owned, *column, Some(ciphertext));
            }
            owned.email_bidx = Some(email_bidx);
            owned.phone_bidx = Some(phone_bidx);
            owned.pii_encrypted = true;
            owned.pii_erasable = true;
            owned.row_version = stored.row_version + 1;
            owned.record_signature = None;
            SealedRow {
                id: upgrade.id(),
                created_at: upgrade.read.row.created_at,
                fingerprint: upgrade.read.fingerprint.clone(),
                owned,
                changed_fields: upgrade.changed_fields(),
            }
        })
        .collect()
}

/// Signs every sealed row in one call. A row that is skipped later (its contact collides) wastes
/// its signature; the check needs the batch before it written.
async fn sign(vault: &Vault, meta: &RequestMeta, rows: &mut [SealedRow]) -> Result<(), ApiError> {
    if rows.is_empty() {
        return Ok(());
    }
    let digests: Vec<[u8; 32]> = rows
        .iter()
        .map(|row| record_digest(row.id, &row.created_at, &row.owned))
        .collect();
    let signatures = vault.sign(&meta.request_id, &digests).await?;
    if signatures.len() != rows.len() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "security-svc returned a different number of signatures than records sent"
        )));
    }
    for (row, signature) in rows.iter_mut().zip(signatures) {
        row.owned.record_signature = Some(signature);
    }
    Ok(())
}

/// Writes a sealed batch in one statement, each row with its audit row, once the batch before
/// it is written: rows whose contacts collide with a stored user's (or with a lower id's of the
/// same batch) are skipped.
async fn write_batch(
    conn: &mut AsyncPgConnection,
    batch: &SealedBatch,
) -> Result<BatchOutcome<SkippedRow>, ApiError> {
    let duplicates = find_duplicates(conn, &batch.rows).await?;
    let mut skipped = batch.skipped.clone();
    let mut upgrades = Vec::with_capacity(batch.rows.len());
    for row in &batch.rows {
        match duplicates.get(&row.id) {
            Some(reason) => skipped.push(SkippedRow {
                user_id: row.id,
                reason: *reason,
            }),
            None => upgrades.push(row),
        }
    }
    let label = Actor::Service(ACTOR.into()).label();
    let events: Vec<AuditEvent<'_>> = upgrades
        .iter()
        .map(|row| AuditEvent {
            user_id: Some(row.id),
            actor_id: None,
            actor_label: &label,
            action: AUDIT_ACTION,
            changed_fields: row.changed_fields.clone(),
            success: true,
            reason: None,
            facts: None,
            request: &batch.meta,
            events: Vec::new(),
        })
        .collect();
    let rows: Vec<Upgraded<'_>> = upgrades
        .iter()
        .map(|row| Upgraded {
            id: row.id,
            fingerprint: &row.fingerprint,
            owned: &row.owned,
        })
        .collect();
    let written = db::write_upgrades(conn, &rows, &events).await?.len();
    if written < rows.len() {
        tracing::info!(
            changed = rows.len() - written,
            "rows changed while their batch was sealed were left as they now are"
        );
    }
    Ok(BatchOutcome {
        last_id: Some(batch.last_id),
        done: written as u64,
        left: skipped,
    })
}

/// The rows of a batch whose blind index another user already holds: a stored row, or a row of
/// this batch with a lower id (which is upgraded; the later ones are skipped).
async fn find_duplicates(
    conn: &mut AsyncPgConnection,
    rows: &[SealedRow],
) -> Result<HashMap<i32, SkipReason>, ApiError> {
    let email_of = |row: &SealedRow| row.owned.email_bidx.clone().unwrap_or_default();
    let phone_of = |row: &SealedRow| row.owned.phone_bidx.clone().unwrap_or_default();
    let email_indexes: Vec<String> = rows.iter().map(email_of).collect();
    let phone_indexes: Vec<String> = rows.iter().map(phone_of).collect();
    let stored = db::rows_holding_indexes(
        conn,
        &email_indexes.iter().map(String::as_str).collect::<Vec<_>>(),
        &phone_indexes.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let mut email_owner: HashMap<&str, i32> = HashMap::new();
    let mut phone_owner: HashMap<&str, i32> = HashMap::new();
    for (id, email, phone) in &stored {
        if let Some(email) = email {
            email_owner.insert(email.as_str(), *id);
        }
        if let Some(phone) = phone {
            phone_owner.insert(phone.as_str(), *id);
        }
    }
    let mut duplicates = HashMap::new();
    for ((row, email), phone) in rows.iter().zip(&email_indexes).zip(&phone_indexes) {
        if let Some(other) = email_owner.get(email.as_str()) {
            duplicates.insert(row.id, SkipReason::DuplicateEmail { other: *other });
        } else if let Some(other) = phone_owner.get(phone.as_str()) {
            duplicates.insert(row.id, SkipReason::DuplicatePhone { other: *other });
        } else {
            email_owner.insert(email, row.id);
            phone_owner.insert(phone, row.id);
        }
    }
    Ok(duplicates)
}
