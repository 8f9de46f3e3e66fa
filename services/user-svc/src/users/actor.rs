//! The acting party of a request, with its role read from the database, and the rules of who
//! may do what to whom.

use super::input::Change;
use crate::auth::Principal;
use crate::domain::roles::{AdminRole, rank};
use crate::domain::status::{Changer, Status};
use crate::error::ApiError;
use crate::record::UserRow;
use crate::stored::Stored;

/// Who acts, as stored right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Service(String),
    User {
        id: i32,
        role: Option<AdminRole>,
        status: Status,
    },
}

/// How a reader sees a user's email and phone: in full, or masked (low admin ranks reading
/// other users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contacts {
    Shown,
    Masked,
}

impl Contacts {
    /// What an admin of `role` sees of other users' contacts.
    fn seen_by(role: AdminRole) -> Self {
        if role.sees_masked_contacts() {
            Contacts::Masked
        } else {
            Contacts::Shown
        }
    }
}

/// The target of an action, as stored right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub id: i32,
    pub role: Option<AdminRole>,
    pub status: Status,
}

/// The admin role stored in a row; unknown text counts as no role.
pub fn stored_role(row: &UserRow) -> Option<AdminRole> {
    match row.owned.admin_role.as_ref()? {
        Stored::Known(role) => Some(*role),
        Stored::Other(_) => {
            tracing::warn!(
                user_id = row.id,
                "stored admin_role is not a known role; treated as none"
            );
            None
        }
    }
}

/// The status stored in a row; missing or unknown text counts as pending.
pub fn stored_status(row: &UserRow) -> Status {
    row.owned
        .status
        .as_ref()
        .and_then(Stored::known)
        .unwrap_or(Status::Pending)
}

impl Target {
    pub fn of(row: &UserRow) -> Self {
        Self {
            id: row.id,
            role: stored_role(row),
            status: stored_status(row),
        }
    }
}

impl Actor {
    /// Resolves a principal against the stored rows: a deleted user's token is refused (401),
    /// a suspended user cannot act (403).
    pub fn resolve(principal: &Principal, rows: &[UserRow]) -> Result<Self, ApiError> {
        match principal {
            Principal::Service(name) => Ok(Actor::Service(name.clone())),
            Principal::User(id) => {
                let row = rows.iter().find(|row| row.id == *id).ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the account this token belongs to no longer exists".into(),
                    )
                })?;
                let status = stored_status(row);
                if status == Status::Suspended {
                    return Err(ApiError::Forbidden("this account is suspended".into()));
                }
                Ok(Actor::User {
                    id: *id,
                    role: stored_role(row),
                    status,
                })
            }
        }
    }

    pub fn user_id(&self) -> Option<i32> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::Service(_) => None,
        }
    }

    pub fn role(&self) -> Option<AdminRole> {
        match self {
            Actor::User { role, .. } => *role,
            Actor::Service(_) => None,
        }
    }

    /// How the actor is named in audit records.
    pub fn label(&self) -> String {
        match self {
            Actor::Service(name) => format!("service:{name}"),
            Actor::User {
                id,
                role: Some(role),
                ..
            } => format!("user:{id} ({role})"),
            Actor::User { id, role: None, .. } => format!("user:{id}"),
        }
    }

    fn is_self(&self, target: &Target) -> bool {
        self.user_id() == Some(target.id)
    }

    fn at_least(&self, minimum: AdminRole, what: &str) -> Result<AdminRole, ApiError> {
        match self.role() {
            Some(role) if role >= minimum => Ok(role),
            _ => Err(ApiError::Forbidden(format!(
                "{what} requires the {minimum} role or higher"
            ))),
        }
    }

    /// Acting on another user requires ranking strictly above them (managers may act on managers).
    fn outranks(&self, role: AdminRole, target: &Target) -> Result<(), ApiError> {
        if rank(Some(role)) > rank(target.role) || role == AdminRole::Manager {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {role} may act only on users ranked below them; this user is {}",
                target
                    .role
                    .map_or("a user".to_owned(), |role| format!("a {role}"))
            )))
        }
    }

    /// Reading a user: themselves, any admin role, or a service. Returns how the reader sees
    /// email and phone.
    pub fn may_view(&self, target_id: i32) -> Result<Contacts, ApiError> {
        match self {
            Actor::Service(_) => Ok(Contacts::Shown),
            Actor::User { id, .. } if *id == target_id => Ok(Contacts::Shown),
            Actor::User {
                role: Some(role), ..
            } => Ok(Contacts::seen_by(*role)),
            Actor::User { .. } => Err(ApiError::Forbidden(
                "you may read only your own account".into(),
            )),
        }
    }

    /// Listing users: any admin role, or a service. Returns how the reader sees email and
    /// phone.
    pub fn may_list(&self) -> Result<Contacts, ApiError> {
        match self {
            Actor::Service(_) => Ok(Contacts::Shown),
            Actor::User {
                role: Some(role), ..
            } => Ok(Contacts::seen_by(*role)),
            Actor::User { .. } => Err(ApiError::Forbidden(
                "listing users requires an admin role".into(),
            )),
        }
    }

    /// Creating users: a service, or admin and above.
    pub fn may_create(&self) -> Result<(), ApiError> {
        match self {
            Actor::Service(_) => Ok(()),
            _ => self
                .at_least(AdminRole::Admin, "creating users")
                .map(|_| ()),
        }
    }

    /// Oneself, or a lower rank as a moderator or above.
    fn self_or_moderating(&self, target: &Target, what: &str) -> Result<(), ApiError> {
        if self.is_self(target) {
            return Ok(());
        }
        let role = self.at_least(AdminRole::Moderator, what)?;
        self.outranks(role, target)
    }

    /// Editing a profile: one's own, or a lower rank's as a moderator or above.
    pub fn may_edit_profile(&self, target: &Target) -> Result<(), ApiError> {
        self.self_or_moderating(target, "editing another user's profile")
    }

    /// Reading devices and sessions: one's own, a lower rank's as a moderator or above, or
    /// anyone's as a service.
    pub fn may_see_sessions(&self, target: &Target) -> Result<(), ApiError> {
        match self {
            Actor::Service(_) => Ok(()),
            Actor::User { .. } => {
                self.self_or_moderating(target, "reading another user's devices and sessions")
            }
        }
    }

    /// Exporting everything held about a user: one's own, or anyone's as a manager. A service
    /// has no part in it.
    pub fn may_export(&self, target: &Target) -> Result<(), ApiError> {
        if self.is_self(target) {
            return Ok(());
        }
        self.at_least(AdminRole::Manager, "exporting another user's data")
            .map(|_| ())
    }

    /// Ending sessions: one's own, or a lower rank's as a moderator or above.
    pub fn may_end_sessions(&self, target: &Target) -> Result<(), ApiError> {
        self.self_or_moderating(target, "ending another user's sessions")
    }

    /// Changing a status: never one's own; the auth-service for verification, a moderator or
    /// above on lower ranks otherwise.
    pub fn status_changer(&self, target: &Target) -> Result<Changer, ApiError> {
        if self.is_self(target) {
            return Err(ApiError::Forbidden(
                "nobody may change their own status".into(),
            ));
        }
        if let Actor::Service(_) = self {
            return Ok(Changer::Service);
        }
        let role = self.at_least(AdminRole::Moderator, "changing a user's status")?;
        self.outranks(role, target)?;
        Ok(Changer::Moderator)
    }

    /// Changing roles, type and subscription: admin and above, on lower ranks, never oneself;
    /// granting only roles below one's own (a manager may grant manager).
    pub fn may_change_role(
        &self,
        target: &Target,
        granted: Change<AdminRole>,
    ) -> Result<(), ApiError> {
        if self.is_self(target) {
            return Err(ApiError::Forbidden(
                "nobody may change their own role".into(),
            ));
        }
        let role = self.at_least(AdminRole::Admin, "changing roles")?;
        self.outranks(role, target)?;
        if let Change::Set(granted) = granted
            && granted >= role
            && role != AdminRole::Manager
        {
            return Err(ApiError::Forbidden(format!(
                "a {role} may grant only roles below {role}; {granted} is not"
            )));
        }
        Ok(())
    }

    /// Deleting: managers only, never oneself.
    pub fn may_delete(&self, target: &Target) -> Result<(), ApiError> {
        if self.is_self(target) {
            return Err(ApiError::Forbidden(
                "nobody may delete their own account here".into(),
            ));
        }
        match self.role() {
            Some(AdminRole::Manager) => Ok(()),
            _ => Err(ApiError::Forbidden(
                "deleting users requires the manager role".into(),
            )),
        }
    }

    /// Reading the event feed: a service, or auditor and above.
    pub fn may_read_events(&self) -> Result<(), ApiError> {
        match self {
            Actor::Service(_) => Ok(()),
            Actor::User { .. } => self
                .at_least(AdminRole::Auditor, "reading the event feed")
                .map(|_| ()),
        }
    }

    /// Reading audit trails: auditor and above.
    pub fn may_read_audit(&self) -> Result<(), ApiError> {
        self.at_least(AdminRole::Auditor, "reading the audit trail")
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i32, role: Option<AdminRole>) -> Actor {
        Actor::User {
            id,
            role,
            status: Status::Active,
        }
    }

    fn target(id: i32, role: Option<AdminRole>) -> Target {
        Target {
            id,
            role,
            status: Status::Active,
        }
    }

    #[test]
    fn admins_act_only_below_their_rank() {
        let moderator = user(1, Some(AdminRole::Moderator));
        assert!(moderator.may_edit_profile(&target(2, None)).is_ok());
        assert!(
            moderator
                .may_edit_profile(&target(2, Some(AdminRole::Auditor)))
                .is_ok()
        );
        assert!(
            moderator
                .may_edit_profile(&target(2, Some(AdminRole::Moderator)))
                .is_err()
        );
        assert!(
            moderator
                .may_edit_profile(&target(2, Some(AdminRole::Admin)))
                .is_err()
        );
        assert!(
            moderator
                .status_changer(&target(2, Some(AdminRole::Admin)))
                .is_err()
        );
    }

    #[test]
    fn roles_granted_must_be_below_ones_own_except_for_managers() {
        let admin = user(1, Some(AdminRole::Admin));
        assert!(
            admin
                .may_change_role(&target(2, None), Change::Set(AdminRole::Moderator))
                .is_ok()
        );
        assert!(
            admin
                .may_change_role(&target(2, None), Change::Set(AdminRole::Admin))
                .is_err()
        );
        assert!(
            admin
                .may_change_role(&target(2, Some(AdminRole::Admin)), Change::Clear)
                .is_err()
        );
        let manager = user(1, Some(AdminRole::Manager));
        assert!(
            manager
                .may_change_role(&target(2, None), Change::Set(AdminRole::Manager))
                .is_ok()
        );
        assert!(
            manager
                .may_change_role(&target(2, Some(AdminRole::Manager)), Change::Clear)
                .is_ok()
        );
        assert!(
            user(1, Some(AdminRole::Moderator))
                .may_change_role(&target(2, None), Change::Keep)
                .is_err()
        );
    }

    #[test]
    fn nobody_changes_themselves_and_only_managers_delete() {
        let manager = user(1, Some(AdminRole::Manager));
        assert!(
            manager
                .may_change_role(&target(1, Some(AdminRole::Manager)), Change::Clear)
                .is_err()
        );
        assert!(
            manager
                .status_changer(&target(1, Some(AdminRole::Manager)))
                .is_err()
        );
        assert!(manager.may_delete(&target(1, None)).is_err());
        assert!(manager.may_delete(&target(2, None)).is_ok());
        assert!(
            user(1, Some(AdminRole::Admin))
                .may_delete(&target(2, None))
                .is_err()
        );
        assert!(user(1, None).may_edit_profile(&target(1, None)).is_ok());
    }

    #[test]
    fn sessions_are_seen_by_oneself_moderators_above_and_services_and_ended_by_the_first_two() {
        let moderator = user(1, Some(AdminRole::Moderator));
        let service = Actor::Service("auth".into());
        assert!(user(2, None).may_see_sessions(&target(2, None)).is_ok());
        assert!(user(2, None).may_end_sessions(&target(2, None)).is_ok());
        assert!(user(2, None).may_see_sessions(&target(3, None)).is_err());
        assert!(moderator.may_see_sessions(&target(2, None)).is_ok());
        assert!(moderator.may_end_sessions(&target(2, None)).is_ok());
        let peer = target(2, Some(AdminRole::Moderator));
        assert!(moderator.may_see_sessions(&peer).is_err());
        assert!(moderator.may_end_sessions(&peer).is_err());
        assert!(service.may_see_sessions(&peer).is_ok());
        assert!(service.may_end_sessions(&peer).is_err());
    }

    #[test]
    fn exports_are_for_oneself_and_managers_only() {
        let manager = user(1, Some(AdminRole::Manager));
        assert!(user(2, None).may_export(&target(2, None)).is_ok());
        assert!(
            manager
                .may_export(&target(2, Some(AdminRole::Manager)))
                .is_ok()
        );
        assert!(
            user(3, Some(AdminRole::Admin))
                .may_export(&target(2, None))
                .is_err()
        );
        assert!(
            Actor::Service("auth".into())
                .may_export(&target(2, None))
                .is_err()
        );
    }

    #[test]
    fn low_ranks_see_contacts_masked() {
        let sees = |actor: Actor, id| actor.may_view(id).unwrap();
        assert_eq!(sees(user(1, Some(AdminRole::Analyst)), 2), Contacts::Masked);
        assert_eq!(sees(user(1, Some(AdminRole::Auditor)), 2), Contacts::Shown);
        assert_eq!(sees(user(1, None), 1), Contacts::Shown);
        assert!(user(1, None).may_view(2).is_err());
        assert_eq!(sees(Actor::Service("auth".into()), 2), Contacts::Shown);
    }
}
