//! User types, the admin hierarchy, and who may do what to whom.
//!
//! Ranks, highest first: manager > admin > moderator > auditor > editor > advertiser > analyst;
//! users without an admin role rank below all of them. An admin acts only on users ranked
//! strictly below them and grants only roles strictly below their own; a manager may do
//! anything, including granting manager. Nobody changes their own role or status. Roles are read
//! from the database on every request, so a demotion applies at once.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What kind of account a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    Voter,
    IndividualCreator,
    OrganizationCreator,
}

impl UserType {
    pub const ALL: [UserType; 3] = [
        UserType::Voter,
        UserType::IndividualCreator,
        UserType::OrganizationCreator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Voter => "voter",
            UserType::IndividualCreator => "individual_creator",
            UserType::OrganizationCreator => "organization_creator",
        }
    }
}

/// A rank in the admin hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    Analyst = 1,
    Advertiser = 2,
    Editor = 3,
    Auditor = 4,
    Moderator = 5,
    Admin = 6,
    Manager = 7,
}

impl AdminRole {
    /// Highest first.
    pub const ALL: [AdminRole; 7] = [
        AdminRole::Manager,
        AdminRole::Admin,
        AdminRole::Moderator,
        AdminRole::Auditor,
        AdminRole::Editor,
        AdminRole::Advertiser,
        AdminRole::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Manager => "manager",
            AdminRole::Admin => "admin",
            AdminRole::Moderator => "moderator",
            AdminRole::Auditor => "auditor",
            AdminRole::Editor => "editor",
            AdminRole::Advertiser => "advertiser",
            AdminRole::Analyst => "analyst",
        }
    }

    /// Ranks that see email and phone masked.
    pub fn sees_masked_contacts(self) -> bool {
        self <= AdminRole::Editor
    }
}

/// Free or paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Free,
    Subscribed,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 2] =
        [SubscriptionStatus::Free, SubscriptionStatus::Subscribed];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Free => "free",
            SubscriptionStatus::Subscribed => "subscribed",
        }
    }
}

macro_rules! text_enum {
    ($type:ty) => {
        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                <$type>::ALL
                    .into_iter()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            <$type>::ALL.iter().map(|value| value.as_str()).collect();
                        format!("must be one of {}", names.join(", "))
                    })
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(UserType);
text_enum!(AdminRole);
text_enum!(SubscriptionStatus);

/// A position in the hierarchy: 0 for users without an admin role.
pub fn rank(role: Option<AdminRole>) -> u8 {
    role.map_or(0, |role| role as u8)
}

/// What one rank may do, for `GET /api/roles`.
pub fn capabilities(role: AdminRole) -> Vec<&'static str> {
    let mut can = vec!["view users (own account always)"];
    if role.sees_masked_contacts() {
        can[0] = "view users with email and phone masked";
    }
    if role >= AdminRole::Auditor {
        can.push("read audit trails");
    }
    if role >= AdminRole::Moderator {
        can.push("edit profiles of lower ranks");
        can.push("activate and suspend lower ranks");
        can.push("see the devices and sessions of lower ranks, and end their sessions");
    }
    if role >= AdminRole::Admin {
        can.push("create users");
        can.push("change user type, subscription and admin role of lower ranks, granting only roles below their own");
    }
    if role == AdminRole::Manager {
        can.push("grant any role, including manager");
        can.push("delete users");
    }
    can
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_hierarchy() {
        assert!(AdminRole::Manager > AdminRole::Admin);
        assert!(AdminRole::Auditor > AdminRole::Editor);
        assert!(rank(Some(AdminRole::Analyst)) > rank(None));
        assert_eq!("moderator".parse::<AdminRole>(), Ok(AdminRole::Moderator));
        assert!(
            "root"
                .parse::<AdminRole>()
                .unwrap_err()
                .contains("manager, admin, moderator")
        );
        assert!(
            AdminRole::Editor.sees_masked_contacts() && !AdminRole::Auditor.sees_masked_contacts()
        );
    }
}
