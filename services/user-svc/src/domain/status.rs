//! The account lifecycle: pending → verified → active ⇄ suspended. An admin may activate a
//! pending user directly; a moderator or above may suspend from any state; nothing returns to
//! pending.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Verified,
    Active,
    Suspended,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Verified,
        Status::Active,
        Status::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Verified => "verified",
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| "must be one of pending, verified, active, suspended".to_owned())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks for a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changer {
    /// The auth-service, reporting a verified email or phone.
    Service,
    /// A moderator or above.
    Moderator,
}

/// The moves `changer` may make from `from`.
pub fn allowed_moves(from: Status, changer: Changer) -> Vec<Status> {
    use Status::*;
    match (changer, from) {
        (Changer::Service, Pending) => vec![Verified],
        (Changer::Service, Verified) => vec![Active],
        (Changer::Service, _) => vec![],
        (Changer::Moderator, Pending) => vec![Active, Suspended],
        (Changer::Moderator, Verified) => vec![Active, Suspended],
        (Changer::Moderator, Active) => vec![Suspended],
        (Changer::Moderator, Suspended) => vec![Active],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_never_returns_to_pending() {
        for from in Status::ALL {
            for changer in [Changer::Service, Changer::Moderator] {
                assert!(!allowed_moves(from, changer).contains(&Status::Pending));
                assert!(!allowed_moves(from, changer).contains(&from));
            }
        }
        assert_eq!(
            allowed_moves(Status::Pending, Changer::Service),
            vec![Status::Verified]
        );
        assert!(allowed_moves(Status::Pending, Changer::Moderator).contains(&Status::Active));
        assert_eq!(
            allowed_moves(Status::Suspended, Changer::Moderator),
            vec![Status::Active]
        );
    }
}
