//! Deleting a user (`DELETE /api/users/:id`): managers only, never the last one; devices,
//! sessions and biometrics cascade, the audit trail is kept.

use diesel_async::AsyncConnection;
use serde_json::json;

use super::actor::Target;
use super::context::{Ctx, not_found};
use super::db as users_db;
use super::write::check_if_match;
use crate::audit::{self, AuditEvent};
use crate::domain::roles::AdminRole;
use crate::error::ApiError;

/// `DELETE /api/users/:id`.
pub async fn delete(ctx: &Ctx<'_>, id: i32, if_match: Option<i64>) -> Result<(), ApiError> {
    let (actor, target) = ctx.load(Some(id)).await?;
    let target = target.ok_or_else(|| not_found(id))?;
    let info = Target::of(&target);
    actor.may_delete(&info)?;
    check_if_match(if_match, &target)?;
    let event = AuditEvent {
        user_id: Some(id),
        actor_id: actor.user_id(),
        actor_label: &actor.label(),
        action: "user.delete",
        changed_fields: Vec::new(),
        success: true,
        reason: None,
        facts: info.role.map(|role| json!({"admin_role": role})),
        request: ctx.meta,
    };
    let mut conn = ctx.conn().await?;
    let version = target.owned.row_version;
    let is_manager = info.role == Some(AdminRole::Manager);
    conn.transaction::<_, ApiError, _>(async |conn| {
        if is_manager {
            users_db::lock_managers(conn).await?;
            if users_db::active_managers_besides(conn, id).await? == 0 {
                return Err(ApiError::Conflict {
                    detail: "the last manager cannot be deleted".into(),
                    errors: Vec::new(),
                });
            }
        }
        if !users_db::delete_if_version(conn, id, version).await? {
            return Err(ApiError::PreconditionFailed {
                current: version + 1,
            });
        }
        audit::append(conn, &event).await?;
        Ok(())
    })
    .await?;
    ctx.state.totals.changed();
    Ok(())
}
