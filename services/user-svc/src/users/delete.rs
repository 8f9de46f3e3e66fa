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

/// `DELETE /api/users/:id`.
pub async fn delete(ctx: &Ctx<'_>, id: i32, if_match: Option<i64>) -> Result<(), ApiError> {
    let (actor, target) = ctx.load_existing(id).await?;
    let info = Target::of(&target);
    actor.may_delete(&info)?;
    check_if_match(if_match, &target)?;
    let label = actor.label();
    let event = AuditEvent {
        facts: info.role.map(|role| json!({"admin_role": role})),
        ..ctx.audit_event(&actor, &label, id, "user.delete")
    };
    let version = target.owned.row_version;
    let is_manager = info.role == Some(AdminRole::Manager);
    let mut conn = ctx.conn().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        if is_manager {
            keep_a_manager(conn, id, last_manager).await?;
        }
        let mut event = event.clone();
        let moved_on = ApiError::PreconditionFailed {
            current: version + 1,
        };
        if !end_all_with(conn, id, version, &mut event).await?
            || !users_db::delete_if_version(conn, id, version).await?
        {
            return Err(moved_on);
        }
        events::publish(&mut event, UserEventType::Deleted, Outcome::default());
        Ok(audit::append(conn, &event).await?)
    })
    .await?;
    ctx.state.totals.changed();
    Ok(())
}

/// The last active manager cannot be deleted.
fn last_manager() -> ApiError {
    ApiError::Conflict {
        detail: "the last manager cannot be deleted".into(),
        errors: Vec::new(),
    }
}
