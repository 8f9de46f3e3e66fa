//! Ending sessions (`is_active = false`): one or all of a user's on request, and all of them
//! when the user is suspended or deleted, in the same transaction as that change. Every end is
//! audited with how many sessions it ended, never with a token.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};
use vottery_common::events::UserEventType;
use vottery_common::sessions::SessionsEnded;

use super::actor::{Actor, Target};
use super::context::Ctx;
use super::db::{self as users_db, sessions as sessions_db};
use super::events::{self, Outcome};
use crate::audit::{self, AuditEvent};
use crate::error::ApiError;
use crate::idempotency::{self, Completion};

/// `DELETE /api/users/:id/sessions/:session_id`. Idempotent: ending an ended session succeeds
/// alike; a session the user does not have is 404. With `answer`, the idempotent request's
/// answer is stored in the same transaction.
pub async fn end_session(
    ctx: &Ctx<'_>,
    id: i32,
    session_id: i32,
    answer: Option<&Completion>,
) -> Result<(), ApiError> {
    let actor = allowed_actor(ctx, id).await?;
    let label = actor.label();
    let mut conn = ctx.conn().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let was_active = sessions_db::end_one(conn, id, session_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("user {id} has no session {session_id}")))?;
        let ended = i64::from(was_active);
        let facts = json!({"session_id": session_id, "sessions_ended": ended});
        let mut event = AuditEvent {
            facts: Some(facts),
            ..ctx.audit_event(&actor, &label, id, "session.end")
        };
        publish_revoked(ctx, &mut event, ended);
        audit::append(conn, &event).await?;
        Ok(idempotency::complete(conn, answer, None).await?)
    })
    .await
}

/// `DELETE /api/users/:id/sessions`: ends every active session of the user. With `answer`, the
/// idempotent request's answer (the count) is stored in the same transaction.
pub async fn end_sessions(
    ctx: &Ctx<'_>,
    id: i32,
    answer: Option<&Completion>,
) -> Result<SessionsEnded, ApiError> {
    let actor = allowed_actor(ctx, id).await?;
    let label = actor.label();
    let mut conn = ctx.conn().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let sessions_ended = sessions_db::end_all(conn, id).await?;
        let facts = json!({ "sessions_ended": sessions_ended });
        let mut event = AuditEvent {
            facts: Some(facts),
            ..ctx.audit_event(&actor, &label, id, "sessions.end")
        };
        publish_revoked(ctx, &mut event, sessions_ended);
        audit::append(conn, &event).await?;
        let ended = SessionsEnded { sessions_ended };
        let body = answer.map(|_| json!(ended));
        idempotency::complete(conn, answer, body.as_ref()).await?;
        Ok(ended)
    })
    .await
}

/// For a suspension or a deletion, inside its transaction: locks the user's row if it is still
/// at `expected_version`, ends all their sessions and notes how many in `event`. False, with
/// nothing ended, when the user moved on.
pub(super) async fn end_all_with(
    ctx: &Ctx<'_>,
    conn: &mut AsyncPgConnection,
    user_id: i32,
    expected_version: i64,
    event: &mut AuditEvent<'_>,
) -> Result<bool, ApiError> {
    if !users_db::lock_if_version(conn, user_id, expected_version).await? {
        return Ok(false);
    }
    let ended = sessions_db::end_all(conn, user_id).await?;
    let mut facts = match event.facts.take() {
        Some(Value::Object(facts)) => facts,
        _ => serde_json::Map::new(),
    };
    facts.insert("sessions_ended".into(), json!(ended));
    event.facts = Some(Value::Object(facts));
    publish_revoked(ctx, event, ended);
    Ok(true)
}

/// Adds the `sessions_revoked` event to a change that ended sessions; none when it ended none.
fn publish_revoked(ctx: &Ctx<'_>, event: &mut AuditEvent<'_>, ended: i64) {
    if ended > 0 {
        let outcome = Outcome {
            sessions_ended: Some(ended),
            ..Outcome::default()
        };
        events::publish(ctx, event, UserEventType::SessionsRevoked, outcome);
    }
}

/// The actor, once the user is found (404) and the actor may end their sessions (403).
async fn allowed_actor(ctx: &Ctx<'_>, id: i32) -> Result<Actor, ApiError> {
    let (actor, target) = ctx.load_existing(id).await?;
    actor.may_end_sessions(&Target::of(&target))?;
    Ok(actor)
}
