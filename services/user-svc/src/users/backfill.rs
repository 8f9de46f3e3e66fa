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
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::batches::{
    BatchError, BatchOptions, BatchOutcome, Progress, RowChange, batch_meta, ready, run_in_batches,
    sign_and_write,
};
use super::db::batches as db;
use super::pii::{IndexedContact, legacy_values, set_column};
use crate::audit::RequestMeta;
use crate::error::ApiError;
use crate::record::UserRow;
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

/// Encrypts, indexes and signs every row still holding plaintext, batch by batch, calling
/// `on_progress` after each batch. Refuses to start while security-svc is sealed or down.
pub async fn encrypt_existing(
    state: &AppState,
    options: BatchOptions,
    on_progress: impl FnMut(&Progress),
) -> Result<Summary, BatchError> {
    ready(state, options).await?;
    let run = run_in_batches(
        state,
        ACTOR,
        options,
        async |conn| db::count_plaintext(conn).await,
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
            email_index_input: IndexedContact::Email.legacy_index_input(&row.owned),
            phone_index_input: IndexedContact::Phone.legacy_index_input(&row.owned),
        }
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
}

/// Locks, upgrades and commits the next batch in one transaction.
async fn upgrade_next_batch(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> Result<BatchOutcome<SkippedRow>, ApiError> {
    let meta = batch_meta(ACTOR);
    conn.transaction::<_, ApiError, _>(async |conn| {
        let rows = db::lock_plaintext_batch(conn, after_id, limit).await?;
        let Some(last) = rows.last() else {
            return Ok(BatchOutcome::none_left());
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
    let (upgrades, mut skipped) = plan_upgrades(rows);
    let sealed = seal_batch(vault, meta, &upgrades).await?;
    let duplicates = find_duplicates(conn, &upgrades, &sealed.indexes).await?;
    let changes = upgraded_columns(&upgrades, sealed, &duplicates, &mut skipped);
    let encrypted = sign_and_write(vault, conn, meta, ACTOR, AUDIT_ACTION, changes).await?;
    Ok((encrypted, skipped))
}

/// The upgrades of a batch's rows, and the rows skipped because they already hold ciphertext.
fn plan_upgrades(rows: &[UserRow]) -> (Vec<Upgrade<'_>>, Vec<SkippedRow>) {
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
    (upgrades, skipped)
}

/// A batch's ciphertexts (every value of every row, in order) and blind indexes (email and
/// phone of every row, in order).
struct SealedBatch {
    ciphertexts: Vec<String>,
    indexes: Vec<String>,
}

/// One encrypt call for every value of the batch and one hmac call for every index.
async fn seal_batch(
    vault: &Vault,
    meta: &RequestMeta,
    upgrades: &[Upgrade<'_>],
) -> Result<SealedBatch, ApiError> {
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
    Ok(SealedBatch {
        ciphertexts,
        indexes,
    })
}

/// The new (unsigned) columns of every upgrade that collides with no other user; the ones that
/// do are added to `skipped`.
fn upgraded_columns<'a>(
    upgrades: &[Upgrade<'a>],
    sealed: SealedBatch,
    duplicates: &HashMap<i32, SkipReason>,
    skipped: &mut Vec<SkippedRow>,
) -> Vec<RowChange<'a>> {
    let mut ciphertexts = sealed.ciphertexts.into_iter();
    let mut indexes = sealed.indexes.chunks_exact(2);
    let mut changes = Vec::with_capacity(upgrades.len());
    for upgrade in upgrades {
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
        changes.push((upgrade.row, owned, upgrade.changed_fields()));
    }
    changes
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
    let stored = db::rows_holding_indexes(conn, &email_indexes, &phone_indexes).await?;
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
