//! Changing a stored user: `PUT /api/users/:id/profile`, `/status` and `/role`. Each plans its
//! change against the row as read; [`super::write`] encrypts, signs and stores it (with the
//! idempotent request's `answer`, when there is one).

use serde_json::{Value, json};
use vottery_common::events::{Transition, UserEventType};
use vottery_common::users::UserView;

use super::actor::Target;
use super::context::{Ctx, today};
use super::events::transition;
use super::input::{self, Change, ProfileChanges, RoleChanges};
use super::write::{Write, write_user};
use crate::domain::roles::AdminRole;
use crate::domain::status::{Status, allowed_moves};
use crate::error::ApiError;
use crate::idempotency::Completion;
use crate::record::{OwnedColumns, UserRow};
use crate::stored::Stored;
use crate::vault::PiiColumn;

/// `PUT /api/users/:id/profile`.
pub async fn update_profile(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
    answer: Option<&Completion>,
) -> Result<UserView, ApiError> {
    let changes = input::profile_update(body, today())?;
    write_user(ctx, id, if_match, answer, |actor, target| {
        actor.may_edit_profile(&Target::of(target))?;
        let mut owned = target.owned.clone();
        apply_profile(&mut owned, &changes);
        Ok(Write {
            action: "user.update_profile",
            changed_fields: changes.changed_fields(),
            facts: None,
            pii: profile_pii(&changes),
            owned,
            removes_a_manager: false,
            ends_sessions: false,
            event: UserEventType::ProfileChanged,
            transition: None,
        })
    })
    .await
}

/// Applies the plain (not encrypted) profile changes.
pub(super) fn apply_profile(owned: &mut OwnedColumns, changes: &ProfileChanges) {
    changes.gender.apply_to(&mut owned.gender);
    changes.country.apply_to(&mut owned.country);
    changes.city.apply_to(&mut owned.city);
    changes.timezone.apply_to(&mut owned.timezone);
    changes.bio.apply_to(&mut owned.bio);
    changes.avatar_url.apply_to(&mut owned.avatar_url);
    changes.language.apply_to(&mut owned.language);
    changes
        .notifications_enabled
        .apply_to(&mut owned.notifications_enabled);
}

/// The encrypted profile changes: each PII column's new plaintext (`None` clears it).
pub(super) fn profile_pii(changes: &ProfileChanges) -> Vec<(PiiColumn, Option<String>)> {
    let date_of_birth = changes
        .date_of_birth
        .map(|date| date.format("%Y-%m-%d").to_string());
    [
        (PiiColumn::FirstName, changes.first_name.clone()),
        (PiiColumn::LastName, changes.last_name.clone()),
        (PiiColumn::DateOfBirth, date_of_birth),
    ]
    .into_iter()
    .filter_map(|(column, change)| match change {
        Change::Keep => None,
        Change::Clear => Some((column, None)),
        Change::Set(value) => Some((column, Some(value))),
    })
    .collect()
}

/// `PUT /api/users/:id/status`.
pub async fn update_status(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
    answer: Option<&Completion>,
) -> Result<UserView, ApiError> {
    let wanted = input::status_update(body)?;
    write_user(ctx, id, if_match, answer, |actor, target| {
        let target_info = Target::of(target);
        let changer = actor.status_changer(&target_info)?;
        let allowed = allowed_moves(target_info.status, changer);
        if !allowed.contains(&wanted) {
            return Err(ApiError::InvalidTransition {
                from: target_info.status.to_string(),
                to: wanted.to_string(),
                allowed: allowed.iter().map(ToString::to_string).collect(),
            });
        }
        let mut owned = target.owned.clone();
        owned.status = Some(wanted.into());
        Ok(Write {
            action: "user.update_status",
            changed_fields: vec!["status".into()],
            facts: Some(json!({"from": target_info.status, "to": wanted})),
            pii: Vec::new(),
            owned,
            removes_a_manager: target_info.role == Some(AdminRole::Manager)
                && wanted == Status::Suspended,
            ends_sessions: wanted == Status::Suspended,
            event: UserEventType::StatusChanged,
            transition: transition(Some(target_info.status.as_str()), Some(wanted.as_str())),
        })
    })
    .await
}

/// `PUT /api/users/:id/role`.
pub async fn update_role(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
    answer: Option<&Completion>,
) -> Result<UserView, ApiError> {
    let changes: RoleChanges = input::role_update(body)?;
    write_user(ctx, id, if_match, answer, |actor, target| {
        let info = Target::of(target);
        actor.may_change_role(&info, changes.admin_role)?;
        Ok(Write {
            action: "user.update_role",
            changed_fields: changes.changed_fields(),
            facts: role_facts(target, changes.admin_role),
            pii: Vec::new(),
            owned: apply_roles(target, &changes),
            removes_a_manager: demotes_a_manager(&info, changes.admin_role),
            ends_sessions: false,
            event: UserEventType::RoleChanged,
            transition: role_transition(target, changes.admin_role),
        })
    })
    .await
}

/// The target's columns with the role, type and subscription changes applied.
fn apply_roles(target: &UserRow, changes: &RoleChanges) -> OwnedColumns {
    let mut owned = target.owned.clone();
    if let Change::Set(kind) = changes.user_type {
        owned.user_type = Some(kind.into());
    }
    changes
        .admin_role
        .map(Stored::from)
        .apply_to(&mut owned.admin_role);
    if let Change::Set(status) = changes.subscription_status {
        owned.subscription_status = Some(status.into());
    }
    changes
        .subscription_plan
        .apply_to(&mut owned.subscription_plan);
    changes
        .subscription_expires_at
        .apply_to(&mut owned.subscription_expires_at);
    owned
}

/// The audit facts of a role change: the admin role before and after, when it changes.
fn role_facts(target: &UserRow, granted: Change<AdminRole>) -> Option<Value> {
    role_transition(target, granted)
        .map(|moved| json!({"admin_role": {"from": moved.from, "to": moved.to}}))
}

/// The admin role before and after a role change, when it changes.
fn role_transition(target: &UserRow, granted: Change<AdminRole>) -> Option<Transition> {
    let to = match granted {
        Change::Keep => return None,
        Change::Clear => None,
        Change::Set(role) => Some(role.as_str()),
    };
    transition(target.owned.admin_role.as_ref().map(Stored::as_str), to)
}

/// Whether a role change takes the manager role away from a manager.
fn demotes_a_manager(target: &Target, granted: Change<AdminRole>) -> bool {
    target.role == Some(AdminRole::Manager)
        && match granted {
            Change::Keep | Change::Set(AdminRole::Manager) => false,
            Change::Clear | Change::Set(_) => true,
        }
}
