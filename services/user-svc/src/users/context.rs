//! The request a use case serves: the application state, the authenticated caller and the
//! request's metadata, with the lookups every use case starts from.

use chrono::{NaiveDate, Utc};

use super::actor::Actor;
use super::db::{self as users_db, Reservation, ReserveError};
use super::input;
use crate::audit::{self, AuditEvent, RequestMeta};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::idempotency::Completion;
use crate::record::UserRow;
use crate::startup::AppState;

/// The request a use case serves. The HTTP routes extract it once
/// ([`crate::routes::extract::RequestContext`]); the operator commands build it directly.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub principal: &'a Principal,
    pub meta: &'a RequestMeta,
}

impl Ctx<'_> {
    /// A pooled database connection (503 when none is free in time).
    pub(super) async fn conn(&self) -> Result<vottery_server::db::DbConn, ApiError> {
        self.state.pool.get().await.map_err(ApiError::database)
    }

    /// The request id, passed on to security-svc.
    pub(super) fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// The actor and, when asked for, the target row, in one query.
    pub(super) async fn load(
        &self,
        target_id: Option<i32>,
    ) -> Result<(Actor, Option<UserRow>), ApiError> {
        let pair = match (self.principal.user_id(), target_id) {
            (Some(actor), Some(target)) => Some((actor, target)),
            (Some(id), None) | (None, Some(id)) => Some((id, id)),
            (None, None) => None,
        };
        let rows = match pair {
            Some((first, second)) => {
                let mut conn = self.conn().await?;
                users_db::find_pair(&mut conn, first, second).await?
            }
            None => Vec::new(),
        };
        let actor = Actor::resolve(self.principal, &rows)?;
        let target = target_id.and_then(|id| rows.into_iter().find(|row| row.id == id));
        Ok((actor, target))
    }

    /// The actor and the target row, which must exist (404 otherwise), in one query.
    pub(super) async fn load_existing(&self, target_id: i32) -> Result<(Actor, UserRow), ApiError> {
        let (actor, target) = self.load(Some(target_id)).await?;
        Ok((actor, target.ok_or_else(|| not_found(target_id))?))
    }

    /// The actor and, for a user, the reservation of a new user's id, in one query that first
    /// makes the idempotent request's claim when `answer` is not held yet.
    pub(super) async fn load_reserving(
        &self,
        new: &input::NewUser,
        answer: Option<&Completion>,
    ) -> Result<(Actor, Option<Reservation>), ApiError> {
        let Some(actor_id) = self.principal.user_id() else {
            return Ok((Actor::resolve(self.principal, &[])?, None));
        };
        let found = {
            let mut conn = self.conn().await?;
            let claim = answer.and_then(Completion::claim_first);
            let (email, phone) = (new.email.as_str(), new.phone.as_str());
            users_db::find_reserving(&mut conn, actor_id, email, phone, claim).await?
        };
        let (row, reservation) = found.unzip();
        Ok((Actor::resolve(self.principal, row.as_slice())?, reservation))
    }

    /// The audit record of a change `actor` (named `label`) made to user `user_id`, with no
    /// field names or facts yet.
    pub(super) fn audit_event<'a>(
        &'a self,
        actor: &Actor,
        label: &'a str,
        user_id: i32,
        action: &'a str,
    ) -> AuditEvent<'a> {
        AuditEvent {
            user_id: Some(user_id),
            actor_id: actor.user_id(),
            actor_label: label,
            action,
            changed_fields: Vec::new(),
            success: true,
            reason: None,
            facts: None,
            request: self.meta,
            events: Vec::new(),
        }
    }

    /// Records a refused attempt (best effort: the refusal is answered either way).
    pub async fn audit_refusal(
        &self,
        action: &str,
        target_id: Option<i32>,
        fields: Vec<String>,
        error: &ApiError,
    ) {
        let actor_id = self.principal.user_id();
        let label = match self.principal {
            Principal::User(id) => format!("user:{id}"),
            Principal::Service(name) => format!("service:{name}"),
        };
        let reason = format!("{}: {error}", error.slug());
        let event = AuditEvent {
            user_id: target_id,
            actor_id,
            actor_label: &label,
            action,
            changed_fields: fields,
            success: false,
            reason: Some(reason),
            facts: None,
            request: self.meta,
            events: Vec::new(),
        };
        let result = async {
            let mut conn = self.conn().await?;
            audit::append(&mut conn, &event)
                .await
                .map_err(ApiError::from)
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, action, "could not audit a refused attempt");
        }
    }
}

/// Today's date, which ages and dates of birth are checked against.
pub(super) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// No user has this id.
pub(super) fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("no user has id {id}"))
}

impl From<ReserveError> for ApiError {
    fn from(error: ReserveError) -> Self {
        match error {
            ReserveError::KeyTaken => ApiError::KeyTaken,
            ReserveError::Database(error) => error.into(),
        }
    }
}
