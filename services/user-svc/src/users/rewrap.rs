//! `user-svc rewrap`: moves stored records onto the latest versions of the PII and signing
//! keys, so that the older versions can then be retired (`min_decryption_version`) or trimmed.
//!
//! A row is due when one of its PII ciphertexts, or its signature, was made with an older
//! version than its key's latest, or when its PII is still under the shared PII key, from
//! before each user had a key of their own: such a row's values are decrypted under the shared
//! key and encrypted again under the user's own context key (two batched calls), so that
//! erasing the user later shreds them. Rows are taken in id order, a batch at a time (keyset
//! pagination on the id), each batch locked and committed with its audit rows in one
//! transaction. The batch's old ciphertexts are rewrapped by security-svc in one `rewrap` call
//! (bound to the same row and column; the plaintext never leaves security-svc), and its rows
//! are signed again in one `sign` call and audited as `user.rewrap`. Only key versions change:
//! values, blind indexes and every other column stay as they were. A rerun resumes, since a
//! rewrapped row is no longer due.
//!
//! A row whose signature does not verify was changed behind the service's back. Signing it
//! again would make the change look legitimate, so, as a write to it would be refused, it is
//! left as it is and reported by id. So is a row with a ciphertext security-svc cannot rewrap
//! (one of a retired version, or one copied from another row or column); the rest of the run
//! goes on.

use std::fmt;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::batches::{
    BatchError, BatchOptions, BatchOutcome, Progress, RowChange, batch_meta, ready, run_in_batches,
    sign_and_write,
};
use super::db::batches as db;
use super::pii::{scope_of, sealed_fields_by_row, set_column};
use crate::audit::RequestMeta;
use crate::error::ApiError;
use crate::record::UserRow;
use crate::startup::AppState;
use crate::vault::{PiiScope, PlainField, SealedField, Vault, key_version};

/// Who the audit trail names as the actor.
const ACTOR: &str = "rewrap";
/// The audit action of a rewrapped row.
pub const AUDIT_ACTION: &str = "user.rewrap";

/// The versions a run moves rows onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub pii: u32,
    pub signing: u32,
}

/// Why a due row was left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// Its signature does not verify (or it has none): it was changed outside the service.
    Unverified,
    /// security-svc could not rewrap one of its ciphertexts (a retired version, or a value
    /// that does not belong to its row and column).
    NotRewrapped,
}

/// A due row left as it was, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftRow {
    pub user_id: i32,
    pub reason: LeftReason,
}

impl fmt::Display for LeftRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.user_id;
        match self.reason {
            LeftReason::Unverified => {
                write!(f, "user {id} left as is: its signature does not verify")
            }
            LeftReason::NotRewrapped => write!(
                f,
                "user {id} left as is: security-svc could not rewrap one of its values"
            ),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub targets: Targets,
    /// Rows due when the run started.
    pub total: u64,
    pub rewrapped: u64,
    /// Rows left as they were, and why.
    pub left: Vec<LeftRow>,
    /// Rows still due when the run ended (the ones left included).
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
            "rewrap: moved {} of {} rows onto PII key v{} and signing key v{} in {} batches ({:.1}s); {} left as they were; {} still due",
            self.rewrapped,
            self.total,
            self.targets.pii,
            self.targets.signing,
            self.batches,
            self.elapsed.as_secs_f64(),
            self.left.len(),
            self.remaining
        )?;
        if self.stopped_early {
            write!(f, " (stopped after the batch limit; rerun to resume)")?;
        }
        Ok(())
    }
}

/// Moves every due row onto the latest key versions, batch by batch, calling `on_progress`
/// after each batch. Refuses to start while security-svc is sealed or down.
pub async fn rewrap(
    state: &AppState,
    options: BatchOptions,
    on_progress: impl FnMut(&Progress),
) -> Result<Summary, BatchError> {
    ready(state, options).await?;
    let (pii, signing) = state
        .vault
        .latest_versions(ACTOR)
        .await
        .map_err(BatchError::Start)?;
    let targets = Targets { pii, signing };
    let run = run_in_batches(
        state,
        ACTOR,
        options,
        async |conn| db::count_due(conn, targets.pii, targets.signing).await,
        async |conn, after_id, limit| {
            rewrap_next_batch(&state.vault, conn, targets, after_id, limit).await
        },
        on_progress,
    )
    .await?;
    Ok(Summary {
        targets,
        total: run.total,
        rewrapped: run.done,
        left: run.left,
        remaining: run.remaining,
        batches: run.batches,
        stopped_early: run.stopped_early,
        elapsed: run.elapsed,
    })
}

/// Locks, rewraps, signs and commits the next batch in one transaction.
async fn rewrap_next_batch(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    targets: Targets,
    after_id: i32,
    limit: usize,
) -> Result<BatchOutcome<LeftRow>, ApiError> {
    let meta = batch_meta(ACTOR);
    conn.transaction::<_, ApiError, _>(async |conn| {
        let rows = db::lock_due_batch(conn, targets.pii, targets.signing, after_id, limit).await?;
        let Some(last) = rows.last() else {
            return Ok(BatchOutcome::none_left());
        };
        let last_id = last.id;
        let (done, left) = rewrap_rows(vault, conn, &meta, targets, &rows).await?;
        Ok(BatchOutcome {
            last_id: Some(last_id),
            done,
            left,
        })
    })
    .await
}

/// Rewraps, signs and writes the locked rows whose signature verifies, with an audit row each;
/// returns how many were written and which were left as they were.
async fn rewrap_rows(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    targets: Targets,
    rows: &[UserRow],
) -> Result<(u64, Vec<LeftRow>), ApiError> {
    let (intact, mut left) = intact_rows(vault, meta, rows).await?;
    let (shared, own): (Vec<&UserRow>, Vec<&UserRow>) = intact
        .into_iter()
        .partition(|row| scope_of(row) == PiiScope::Shared);
    let mut changes = rewrapped_columns(vault, meta, targets, &own, &mut left).await?;
    changes.extend(moved_to_own_keys(vault, meta, &shared, &mut left).await?);
    // One sign call for every row left to write; each is written with its audit row.
    for (row, owned, columns) in &mut changes {
        owned.row_version = row.owned.row_version + 1;
        owned.record_signature = None;
        columns.push("record_signature".to_owned());
    }
    let written = sign_and_write(vault, conn, meta, ACTOR, AUDIT_ACTION, changes).await?;
    for row in &left {
        if row.reason == LeftReason::Unverified {
            tracing::warn!(
                user_id = row.user_id,
                "user record fails its signature check; left on its old key versions"
            );
        }
    }
    left.sort_by_key(|row| row.user_id);
    Ok((written, left))
}

/// One signature check for the batch: only intact rows are signed again. Returns the intact
/// rows and the others, left as they are.
async fn intact_rows<'a>(
    vault: &Vault,
    meta: &RequestMeta,
    rows: &'a [UserRow],
) -> Result<(Vec<&'a UserRow>, Vec<LeftRow>), ApiError> {
    let signed: Vec<([u8; 32], &str)> = rows
        .iter()
        .filter_map(|row| Some((row.digest(), row.owned.record_signature.as_deref()?)))
        .collect();
    let mut checks = vault.verify(&meta.request_id, &signed).await?.into_iter();
    let mut intact = Vec::with_capacity(rows.len());
    let mut left = Vec::new();
    for row in rows {
        let valid = row.owned.record_signature.is_some() && checks.next().unwrap_or(false);
        if valid {
            intact.push(row);
        } else {
            left.push(LeftRow {
                user_id: row.id,
                reason: LeftReason::Unverified,
            });
        }
    }
    Ok((intact, left))
}

/// One rewrap call for every old ciphertext of the intact rows. Returns each row whose values
/// were all rewrapped with its new columns (unsigned); the others are added to `left`.
async fn rewrapped_columns<'a>(
    vault: &Vault,
    meta: &RequestMeta,
    targets: Targets,
    intact: &[&'a UserRow],
    left: &mut Vec<LeftRow>,
) -> Result<Vec<RowChange<'a>>, ApiError> {
    let mut old = sealed_fields_by_row(intact);
    old.retain(|(_, field)| {
        key_version(field.ciphertext).is_some_and(|version| version < targets.pii)
    });
    let fields: Vec<SealedField<'_>> = old.iter().map(|(_, field)| *field).collect();
    let ciphertexts = vault.rewrap(&meta.request_id, &fields).await?;
    let mut updated: Vec<Option<RowChange<'a>>> = intact
        .iter()
        .map(|row| Some((*row, row.owned.clone(), Vec::new())))
        .collect();
    for ((index, field), ciphertext) in old.iter().zip(ciphertexts) {
        match (ciphertext, &mut updated[*index]) {
            (Ok(ciphertext), Some((_, owned, columns))) => {
                set_column(owned, field.column, Some(ciphertext));
                columns.push(field.column.column().to_owned());
            }
            (Err(reason), slot @ Some(_)) => {
                tracing::warn!(
                    user_id = field.user_id,
                    column = field.column.column(),
                    %reason,
                    "stored ciphertext could not be rewrapped; the record is left as it is"
                );
                *slot = None;
                left.push(LeftRow {
                    user_id: field.user_id,
                    reason: LeftReason::NotRewrapped,
                });
            }
            (_, None) => {}
        }
    }
    Ok(updated.into_iter().flatten().collect())
}

/// Moves rows from the shared PII key onto their users' own context keys: one decrypt call
/// under the shared key, one encrypt call under the users' keys. Returns each row whose values
/// all moved, with its new columns (unsigned); the others are added to `left`.
async fn moved_to_own_keys<'a>(
    vault: &Vault,
    meta: &RequestMeta,
    shared: &[&'a UserRow],
    left: &mut Vec<LeftRow>,
) -> Result<Vec<RowChange<'a>>, ApiError> {
    let sealed = sealed_fields_by_row(shared);
    let fields: Vec<SealedField<'_>> = sealed.iter().map(|(_, field)| *field).collect();
    let plain = vault
        .decrypt_in(&meta.request_id, PiiScope::Shared, &fields)
        .await?;
    let mut readable = vec![true; shared.len()];
    for ((index, field), value) in sealed.iter().zip(&plain) {
        if let Err(reason) = value {
            tracing::warn!(
                user_id = field.user_id,
                column = field.column.column(),
                %reason,
                "stored ciphertext could not be decrypted under the shared key; the record is left as it is"
            );
            readable[*index] = false;
        }
    }
    let to_encrypt: Vec<(usize, PlainField<'_>)> = sealed
        .iter()
        .zip(&plain)
        .filter(|((index, _), _)| readable[*index])
        .filter_map(|((index, field), value)| {
            let value = value.as_deref().ok()?;
            Some((
                *index,
                PlainField {
                    user_id: field.user_id,
                    column: field.column,
                    value,
                },
            ))
        })
        .collect();
    let plain_fields: Vec<PlainField<'_>> = to_encrypt.iter().map(|(_, field)| *field).collect();
    let ciphertexts = vault.encrypt(&meta.request_id, &plain_fields).await?;
    let mut changes: Vec<RowChange<'a>> = shared
        .iter()
        .map(|row| {
            let mut owned = row.owned.clone();
            owned.pii_erasable = true;
            (*row, owned, vec!["pii_erasable".to_owned()])
        })
        .collect();
    for ((index, field), ciphertext) in to_encrypt.iter().zip(ciphertexts) {
        let (_, owned, columns) = &mut changes[*index];
        set_column(owned, field.column, Some(ciphertext));
        columns.push(field.column.column().to_owned());
    }
    let mut moved = Vec::with_capacity(shared.len());
    for (change, readable) in changes.into_iter().zip(readable) {
        if readable {
            moved.push(change);
        } else {
            left.push(LeftRow {
                user_id: change.0.id,
                reason: LeftReason::NotRewrapped,
            });
        }
    }
    Ok(moved)
}
