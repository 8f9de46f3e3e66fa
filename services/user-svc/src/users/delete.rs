//! Deleting a user (`DELETE /api/users/:id`): managers only, never the last one. Their
//! sessions end in the same transaction and the audit record says how many; devices, sessions
//! and biometrics then cascade, and the audit trail is kept.

use diesel_async::AsyncConnection;
use serde_json::json;
use vottery_common::events::UserEventType;

use super::actor::Target;
use super::context::Ctx;
use super::db as users_db;
use super::end_sessions::end_all_with;
use super::events::{self, Outcome};
use super::write::{check_if_match, keep_a_manager};
use crate::audit::{self, AuditEvent};
use crate::domain::roles::AdminRole;
use crate::error::ApiError;
use crate::idempotency::{self, Completion};

/// `DELETE /api/users/:id`; with `answer`, the idempotent request's answer is stored in the
/// deletion's transaction.
pub async fn delete(
    ctx: &Ctx<'_>,
    id: i32,
    if_match: Option<i64>,
    answer: Option<&Completion>,
) -> Result<(), ApiError> {
    let (actor, target) = ctx.load_existing(id).await?;
    let info = Target::of(&target);
    actor.may_delete(&info)?;
    check_if_match(if_match, &target)?;
    let label = actor.label();
    let event = AuditEvent {
        facts: info.role.map(|role| json!({"admin_role": role})),
        ..ctx.audit_event(&actor, &label, id, "user.delete")
    };
    let removal = Removal {
        id,
        version: target.owned.row_version,
        is_manager: info.role == Some(AdminRole::Manager),
        last_manager,
        event,
        kind: UserEventType::Deleted,
    };
    remove(ctx, removal, answer).await?;
    ctx.state.totals.changed();
    Ok(())
}

/// A user's row to remove, with the audit record and event that say why.
pub(super) struct Removal<'a> {
    pub id: i32,
    /// The version read: the removal is refused (412) if the row moved on since.
    pub version: i64,
    /// The user is a manager: another active one must remain, checked under the managers lock.
    pub is_manager: bool,
    /// The refusal when they are the last one.
    pub last_manager: fn() -> ApiError,
    pub event: AuditEvent<'a>,
    pub kind: UserEventType,
}

/// Removes the row in one transaction: its sessions ended (the audit record says how many),
/// the row deleted at the version read, the audit record and event appended and, with
/// `answer`, the idempotent request's answer stored.
pub(super) async fn remove(
    ctx: &Ctx<'_>,
    removal: Removal<'_>,
    answer: Option<&Completion>,
) -> Result<(), ApiError> {
    let Removal {
        id,
        version,
        is_manager,
        last_manager,
        event,
        kind,
    } = removal;
    let mut conn = ctx.conn().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        if is_manager {
            keep_a_manager(conn, id, last_manager).await?;
        }
        let mut event = event.clone();
        if !end_all_with(ctx, conn, id, version, &mut event).await?
            || !users_db::delete_if_version(conn, id, version).await?
        {
            return Err(ApiError::PreconditionFailed {
                current: version + 1,
            });
        }
        events::publish(ctx, &mut event, kind, Outcome::default());
        audit::append(conn, &event).await?;
        Ok(idempotency::complete(conn, answer, None).await?)
    })
    .await
}

/// The last active manager cannot be deleted.
fn last_manager() -> ApiError {
    ApiError::Conflict {
        detail: "the last manager cannot be deleted".into(),
        errors: Vec::new(),
    }
}
