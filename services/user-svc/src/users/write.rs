//! Writing a change to a stored user: planned against the row as read, its PII encrypted and
//! its record signed in batched security-svc calls, and stored with its audit record only if
//! the row is still at the version it was read at (optimistic concurrency, retried when another
//! write lands first).

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use vottery_common::events::{Transition, UserEventType};
use vottery_common::problem::FieldError;
use vottery_common::users::UserView;

use super::actor::{Actor, Contacts};
use super::context::{Ctx, today};
use super::db::{self as users_db, Duplicate};
use super::end_sessions::end_all_with;
use super::events::{self, Outcome};
use super::pii::{
    IndexedContact, Pii, is_legacy, legacy_values, scope_of, sealed_fields, set_column,
};
use super::view::{self, Integrity};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::idempotency::Completion;
use crate::record::{OwnedColumns, UserRow, record_digest};
use crate::vault::{PiiColumn, PiiScope, PlainField, SealedField, erased_user, is_erased};

/// How often a write is tried when other writes to the same user land first. Each lost attempt
/// means another write committed during it, and one commit spoils at most one attempt of each
/// writer, so up to this many concurrent writers to one user all land.
const WRITE_ATTEMPTS: usize = 16;

/// A change to a stored user, planned by a use case.
pub(super) struct Write {
    pub action: &'static str,
    pub changed_fields: Vec<String>,
    pub facts: Option<Value>,
    /// New plaintext of encrypted columns (`None` clears).
    pub pii: Vec<(PiiColumn, Option<String>)>,
    /// The target's owned columns with the plain changes applied.
    pub owned: OwnedColumns,
    /// The write takes an active manager away (a demotion or suspension): another active
    /// manager must remain, checked under a lock in the write's own transaction.
    pub removes_a_manager: bool,
    /// The write suspends the user: all their sessions end in the write's own transaction, and
    /// its audit record says how many.
    pub ends_sessions: bool,
    /// The event the write publishes, and the transition it reports.
    pub event: UserEventType,
    pub transition: Option<Transition>,
}

/// Runs a write with optimistic concurrency: the plan is made against the current row, and
/// re-made if another write lands first. `If-Match` turns a moved version into 412. With
/// `answer`, the write that lands stores the idempotent request's answer.
pub(super) async fn write_user(
    ctx: &Ctx<'_>,
    target_id: i32,
    if_match: Option<i64>,
    answer: Option<&Completion>,
    plan: impl Fn(&Actor, &UserRow) -> Result<Write, ApiError>,
) -> Result<UserView, ApiError> {
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let (actor, target) = ctx.load_existing(target_id).await?;
        check_if_match(if_match, &target)?;
        let write = plan(&actor, &target)?;
        if let Some((row, plain)) = persist(ctx, &actor, &target, write, answer).await? {
            return Ok(view::build(
                &row,
                plain,
                Integrity::Intact,
                Contacts::Shown,
                today(),
            ));
        }
        if if_match.is_some() {
            let (_, current) = ctx.load(Some(target_id)).await?;
            return Err(ApiError::PreconditionFailed {
                current: current.map_or(0, |row| row.owned.row_version),
            });
        }
    }
    Err(ApiError::Contention)
}

/// Refuses a write based on a version other than the stored one (412).
pub(super) fn check_if_match(if_match: Option<i64>, target: &UserRow) -> Result<(), ApiError> {
    match if_match {
        Some(expected) if expected != target.owned.row_version => {
            Err(ApiError::PreconditionFailed {
                current: target.owned.row_version,
            })
        }
        _ => Ok(()),
    }
}

/// A short random pause before retrying a write that lost a race, so that the writers that
/// lost spread out instead of colliding again.
async fn back_off(attempt: usize) {
    use ring::rand::SecureRandom;
    let mut jitter = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut jitter);
    let millis = 2 * attempt as u64 + u64::from(jitter[0] % 8);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// Encrypts, signs and stores a planned write if the row is still at the version it was read
/// at; `Ok(None)` when another write landed first. The current signature is checked before
/// anything is re-signed, so a record changed behind the service's back is never blessed.
async fn persist(
    ctx: &Ctx<'_>,
    actor: &Actor,
    target: &UserRow,
    write: Write,
    answer: Option<&Completion>,
) -> Result<Option<(UserRow, Pii)>, ApiError> {
    let mut sealing = Sealing::plan(target, &write.pii);
    let sealed = sealing.run(ctx).await?;
    let mut owned = sealing.store_in(&write, sealed);
    owned.row_version = target.owned.row_version + 1;
    sign_record(ctx, target.id, &target.created_at, &mut owned).await?;
    let stored = store(ctx, actor, target, &write, &owned, answer).await?;
    if stored.is_some() {
        ctx.state.totals.changed();
    }
    Ok(stored.map(|row| (row, sealing.plain)))
}

/// The security-svc work of a write to a stored record: the values to encrypt, the kept
/// ciphertexts to decrypt (for the answer, and as part of the integrity check), and for a
/// legacy row, whose columns still hold plaintext, every value and both blind indexes.
struct Sealing<'a> {
    target: &'a UserRow,
    /// The record's plaintext after the write; complete once the kept values are decrypted.
    plain: Pii,
    to_encrypt: Vec<(PiiColumn, String)>,
    kept: Vec<SealedField<'a>>,
    to_index: Vec<(IndexedContact, String)>,
}

/// What security-svc answered for a [`Sealing`], in its order.
struct Sealed {
    ciphertexts: Vec<String>,
    indexes: Vec<String>,
}

impl<'a> Sealing<'a> {
    fn plan(target: &'a UserRow, pii: &[(PiiColumn, Option<String>)]) -> Self {
        let changes = |column: PiiColumn| pii.iter().any(|(changed, _)| *changed == column);
        let mut sealing = Self {
            target,
            plain: Pii::default(),
            to_encrypt: Vec::new(),
            kept: Vec::new(),
            to_index: Vec::new(),
        };
        for (column, value) in pii {
            sealing.note(*column, value.clone());
        }
        if is_legacy(target) {
            for (column, value) in legacy_values(target) {
                if !changes(column) && value.is_some() {
                    sealing.note(column, value);
                }
            }
            sealing.to_index = IndexedContact::BOTH
                .map(|contact| (contact, contact.legacy_index_input(&target.owned)))
                .to_vec();
        } else {
            sealing.kept = sealed_fields(target)
                .into_iter()
                .filter(|field| !changes(field.column))
                .collect();
        }
        sealing
    }

    /// A column's plaintext after the write, encrypted unless it is cleared.
    fn note(&mut self, column: PiiColumn, value: Option<String>) {
        if let Some(value) = &value {
            self.to_encrypt.push((column, value.clone()));
        }
        self.plain.set(column, value);
    }

    /// Encrypts, decrypts, indexes and checks the current signature in one round of calls;
    /// refuses (409) a record that fails its integrity check.
    async fn run(&mut self, ctx: &Ctx<'_>) -> Result<Sealed, ApiError> {
        let vault = &ctx.state.vault;
        let target = self.target;
        let plain_fields: Vec<PlainField<'_>> = self
            .to_encrypt
            .iter()
            .map(|(column, value)| PlainField {
                user_id: target.id,
                column: *column,
                value,
            })
            .collect();
        let index_inputs: Vec<&str> = self
            .to_index
            .iter()
            .map(|(_, input)| input.as_str())
            .collect();
        let current_signature: Vec<([u8; 32], &str)> =
            match target.owned.record_signature.as_deref() {
                Some(signature) if !is_legacy(target) => vec![(target.digest(), signature)],
                _ => Vec::new(),
            };
        let (ciphertexts, decrypted, indexes, verified) = tokio::try_join!(
            vault.encrypt_in(ctx.request_id(), scope_of(target), &plain_fields),
            vault.decrypt_in(ctx.request_id(), scope_of(target), &self.kept),
            vault.blind_indexes(ctx.request_id(), &index_inputs),
            vault.verify(ctx.request_id(), &current_signature),
        )?;
        if decrypted
            .iter()
            .any(|value| value.as_ref().is_err_and(|reason| is_erased(reason)))
        {
            return Err(erased_user(target.id));
        }
        let intact = verified.first() == Some(&true) && decrypted.iter().all(Result::is_ok);
        if !is_legacy(target) && !intact {
            return Err(fails_integrity_check(target.id));
        }
        for (field, value) in self.kept.iter().zip(decrypted) {
            self.plain.set(field.column, value.ok());
        }
        Ok(Sealed {
            ciphertexts,
            indexes,
        })
    }

    /// The write's owned columns with the new ciphertexts and indexes stored in them, marked
    /// encrypted and unsigned.
    fn store_in(&self, write: &Write, sealed: Sealed) -> OwnedColumns {
        let mut owned = write.owned.clone();
        for ((column, _), ciphertext) in self.to_encrypt.iter().zip(sealed.ciphertexts) {
            set_column(&mut owned, *column, Some(ciphertext));
        }
        for (column, _) in write.pii.iter().filter(|(_, value)| value.is_none()) {
            set_column(&mut owned, *column, None);
        }
        for ((contact, _), index) in self.to_index.iter().zip(sealed.indexes) {
            contact.set_index(&mut owned, index);
        }
        owned.pii_encrypted = true;
        owned.pii_erasable = scope_of(self.target) == PiiScope::PerUser;
        owned.record_signature = None;
        owned
    }
}

/// A stored record whose signature or ciphertexts do not check out is not signed again.
fn fails_integrity_check(user_id: i32) -> ApiError {
    tracing::warn!(
        user_id,
        "refusing to re-sign a record that fails its integrity check"
    );
    ApiError::Conflict {
        detail: "this user's stored record fails its integrity check (it was changed outside user-svc); it is not re-signed until restored".into(),
        errors: Vec::new(),
    }
}

/// Signs a record's owned columns as they will be stored.
pub(super) async fn sign_record(
    ctx: &Ctx<'_>,
    id: i32,
    created_at: &Option<chrono::NaiveDateTime>,
    owned: &mut OwnedColumns,
) -> Result<(), ApiError> {
    let digest = record_digest(id, created_at, owned);
    owned.record_signature = ctx
        .state
        .vault
        .sign(ctx.request_id(), &[digest])
        .await?
        .into_iter()
        .next();
    Ok(())
}

/// Stores the signed columns with the write's audit record if the row is still at the version
/// it was read at. One statement, so atomic on its own; a write that takes a manager away also
/// checks, under the managers lock in the same transaction, that another one remains, and a
/// suspension ends the user's sessions in the same transaction.
async fn store(
    ctx: &Ctx<'_>,
    actor: &Actor,
    target: &UserRow,
    write: &Write,
    owned: &OwnedColumns,
    answer: Option<&Completion>,
) -> Result<Option<UserRow>, ApiError> {
    let label = actor.label();
    let mut event = AuditEvent {
        changed_fields: write.changed_fields.clone(),
        facts: write.facts.clone(),
        ..ctx.audit_event(actor, &label, target.id, write.action)
    };
    let outcome = Outcome {
        version: Some(owned.row_version),
        transition: write.transition.clone(),
        sessions_ended: None,
    };
    events::publish(ctx, &mut event, write.event, outcome);
    let expected = target.owned.row_version;
    let update = async |conn: &mut AsyncPgConnection, event: &AuditEvent<'_>| {
        users_db::update_if_version(conn, target.id, expected, owned, event, answer)
            .await
            .map_err(stored_or_conflict)
    };
    let mut conn = ctx.conn().await?;
    if !write.removes_a_manager && !write.ends_sessions {
        return update(&mut conn, &event).await;
    }
    conn.transaction::<_, ApiError, _>(async |conn| {
        if write.removes_a_manager {
            keep_a_manager(conn, target.id, last_manager).await?;
        }
        let mut event = event.clone();
        if write.ends_sessions && !end_all_with(ctx, conn, target.id, expected, &mut event).await? {
            return Ok(None);
        }
        update(conn, &event).await
    })
    .await
}

/// Refuses, with `refusal`, a change that would take away the last active manager; the
/// managers lock is held until the transaction ends.
pub(super) async fn keep_a_manager(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    refusal: fn() -> ApiError,
) -> Result<(), ApiError> {
    users_db::lock_managers(conn).await?;
    if users_db::active_managers_besides(conn, user_id).await? == 0 {
        return Err(refusal());
    }
    Ok(())
}

/// A failed write: 409 when it collided with another user's email or phone.
pub(super) fn stored_or_conflict(error: diesel::result::Error) -> ApiError {
    match users_db::duplicate_of(&error) {
        Some(duplicate) => duplicate_conflict(duplicate),
        None => ApiError::from(error),
    }
}

/// Another user already has this email or phone number.
pub(super) fn duplicate_conflict(duplicate: Duplicate) -> ApiError {
    let (field, what) = match duplicate {
        Duplicate::Email => ("sngine_email", "email"),
        Duplicate::Phone => ("sngine_phone", "phone number"),
    };
    ApiError::Conflict {
        detail: format!("another user already has this {what}"),
        errors: vec![FieldError::new(
            field,
            "is already registered to another user",
        )],
    }
}

fn last_manager() -> ApiError {
    ApiError::Conflict {
        detail: "this is the last manager; appoint another manager first".into(),
        errors: vec![FieldError::new(
            "admin_role",
            "the last manager cannot be demoted",
        )],
    }
}
