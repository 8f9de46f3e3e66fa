//! Erasing a user (`POST /api/users/:id/erase`, GDPR article 17) by crypto-shredding: their
//! context key in security-svc is destroyed first, so that every copy of their PII ciphertext
//! (replicas, dumps, backups) is unreadable for good, then the row is deleted as a deletion
//! does: sessions ended in the same transaction, devices, sessions and biometrics cascading.
//! The audit trail holds no PII and stays, with a `user.erase` record saying the subject was
//! erased; `dev.vottery.user.erased` goes out through the outbox.
//!
//! An erasure stopped after the key was destroyed leaves the row readable only as erased (its
//! PII null, `erased: true`); asking again completes it, since destroying a destroyed key
//! changes nothing.

use serde_json::json;
use vottery_common::events::UserEventType;

use super::actor::{Actor, Target};
use super::context::Ctx;
use super::db as users_db;
use super::delete::{Removal, remove};
use super::pii::{scope_of, sealed_fields};
use super::write::check_if_match;
use crate::audit::AuditEvent;
use crate::domain::roles::AdminRole;
use crate::error::ApiError;
use crate::idempotency::Completion;
use crate::record::UserRow;
use crate::vault::PiiScope;

/// The audit action of an erasure.
pub const AUDIT_ACTION: &str = "user.erase";

/// How often the deletion is tried when a write to the user lands between reading and
/// deleting the row (only without `If-Match`).
const ATTEMPTS: usize = 4;

/// `POST /api/users/:id/erase`; with `answer`, the idempotent request's answer is stored in the
/// deletion's transaction.
pub async fn erase(
    ctx: &Ctx<'_>,
    id: i32,
    if_match: Option<i64>,
    answer: Option<&Completion>,
) -> Result<(), ApiError> {
    for _ in 0..ATTEMPTS {
        let (actor, target) = ctx.load_existing(id).await?;
        let info = Target::of(&target);
        may_erase(&actor, &info)?;
        check_if_match(if_match, &target)?;
        shreddable(&target)?;
        if info.role == Some(AdminRole::Manager) {
            another_manager_remains(ctx, id).await?;
        }
        ctx.state
            .vault
            .destroy_subject(ctx.request_id(), id)
            .await?;
        match delete_row(ctx, &actor, &target, info, answer).await {
            Err(ApiError::PreconditionFailed { current }) if if_match.is_some() => {
                return Err(ApiError::PreconditionFailed { current });
            }
            Err(ApiError::PreconditionFailed { .. }) => continue,
            result => {
                ctx.state.totals.changed();
                return result;
            }
        }
    }
    Err(ApiError::Contention)
}

/// Erasing: a manager (never their own account), or a service acting on the user's verified
/// request (the auth-service, once the user has confirmed it).
fn may_erase(actor: &Actor, target: &Target) -> Result<(), ApiError> {
    match actor {
        Actor::Service(_) => Ok(()),
        Actor::User { .. } => actor.may_delete(target),
    }
}

/// Only a row whose PII is under the user's own key can be shredded; one still in plaintext or
/// under the shared key must first be moved by `encrypt-existing` and `rewrap` (409).
fn shreddable(target: &UserRow) -> Result<(), ApiError> {
    if target.owned.pii_encrypted && scope_of(target) == PiiScope::PerUser {
        return Ok(());
    }
    Err(ApiError::Conflict {
        detail: "this user's PII is not yet under a key of their own, so erasing would leave copies readable; run `user-svc encrypt-existing` and `user-svc rewrap`, then erase".into(),
        errors: Vec::new(),
    })
}

/// Refuses, before anything is destroyed, to erase the last active manager; checked again
/// under the managers lock when the row is deleted.
async fn another_manager_remains(ctx: &Ctx<'_>, id: i32) -> Result<(), ApiError> {
    let mut conn = ctx.conn().await?;
    if users_db::active_managers_besides(&mut conn, id).await? == 0 {
        return Err(last_manager());
    }
    Ok(())
}

/// Deletes the row at the version read, with its audit record and event, ending its sessions in
/// the same transaction; 412 when the row moved on.
async fn delete_row(
    ctx: &Ctx<'_>,
    actor: &Actor,
    target: &UserRow,
    info: Target,
    answer: Option<&Completion>,
) -> Result<(), ApiError> {
    let id = target.id;
    let label = actor.label();
    let erased_fields: Vec<String> = sealed_fields(target)
        .iter()
        .map(|field| field.column.column().to_owned())
        .collect();
    let mut facts = json!({"subject_erased": true, "pii_key_destroyed": true});
    if let Some(role) = info.role {
        facts["admin_role"] = json!(role);
    }
    let event = AuditEvent {
        changed_fields: erased_fields,
        facts: Some(facts),
        ..ctx.audit_event(actor, &label, id, AUDIT_ACTION)
    };
    let removal = Removal {
        id,
        version: target.owned.row_version,
        is_manager: info.role == Some(AdminRole::Manager),
        last_manager,
        event,
        kind: UserEventType::Erased,
    };
    remove(ctx, removal, answer).await
}

/// The last active manager cannot be erased.
fn last_manager() -> ApiError {
    ApiError::Conflict {
        detail: "the last manager cannot be erased; appoint another manager first".into(),
        errors: Vec::new(),
    }
}
