//! Exporting everything held about a user (`GET /api/users/:id/export`, GDPR articles 15 and
//! 20): oneself, or anyone as a manager; audited as `user.export`. The bounded part (profile,
//! devices, sessions, biometrics) is read before the answer starts, so that a refusal or an
//! unavailable dependency is still answered with its status; the audit trail, which grows
//! without bound, is streamed after it ([`super::export_body`]).

use chrono::Utc;
use vottery_common::export::ExportHead;
use vottery_server::db::DbPool;

use super::actor::Target;
use super::context::Ctx;
use super::read::render_one;
use super::sessions::everything_recorded;
use crate::audit;
use crate::error::ApiError;

/// An export whose bounded part is read, and the pool its audit trail is read from.
pub struct ExportDocument {
    pub head: ExportHead,
    pub pool: DbPool,
}

/// `GET /api/users/:id/export`: everything but the audit trail, once the export is recorded.
pub async fn export(ctx: &Ctx<'_>, id: i32) -> Result<ExportDocument, ApiError> {
    let (actor, target) = ctx.load_existing(id).await?;
    actor.may_export(&Target::of(&target))?;
    let profile = render_one(ctx, &target, actor.may_view(id)?).await?;
    let mut conn = ctx.conn().await?;
    let (devices, sessions, biometrics) = everything_recorded(&mut conn, id).await?;
    let label = actor.label();
    audit::append(
        &mut conn,
        &ctx.audit_event(&actor, &label, id, "user.export"),
    )
    .await?;
    Ok(ExportDocument {
        head: ExportHead {
            user_id: id,
            exported_at: Utc::now(),
            profile,
            devices,
            sessions,
            biometrics,
        },
        pool: ctx.state.pool.clone(),
    })
}
