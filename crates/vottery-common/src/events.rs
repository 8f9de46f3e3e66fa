//! user-svc's events: CloudEvents 1.0 in structured JSON mode, one per change to a user, as
//! the pull feed (`GET /api/events`) serves them and the relay publishes them to NATS. They
//! carry ids, field names and transitions, never a personal value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `source` of every user event.
pub const SOURCE: &str = "/vottery/user-svc";
/// The CloudEvents version the events follow.
pub const SPEC_VERSION: &str = "1.0";
/// The `datacontenttype` of every user event.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserEventType {
    Created,
    ProfileChanged,
    StatusChanged,
    RoleChanged,
    Deleted,
    SessionsRevoked,
    /// The user's PII key was destroyed and the row deleted (crypto-shredding).
    Erased,
}

impl UserEventType {
    pub const ALL: [UserEventType; 7] = [
        UserEventType::Created,
        UserEventType::ProfileChanged,
        UserEventType::StatusChanged,
        UserEventType::RoleChanged,
        UserEventType::Deleted,
        UserEventType::SessionsRevoked,
        UserEventType::Erased,
    ];

    /// The last part of the type, also the last token of its NATS subject.
    pub fn suffix(self) -> &'static str {
        match self {
            UserEventType::Created => "created",
            UserEventType::ProfileChanged => "profile_changed",
            UserEventType::StatusChanged => "status_changed",
            UserEventType::RoleChanged => "role_changed",
            UserEventType::Deleted => "deleted",
            UserEventType::SessionsRevoked => "sessions_revoked",
            UserEventType::Erased => "erased",
        }
    }

    /// The CloudEvents `type`, such as `dev.vottery.user.created`.
    pub fn type_name(self) -> String {
        format!("dev.vottery.user.{}", self.suffix())
    }

    /// Reads a CloudEvents `type`.
    pub fn from_type_name(name: &str) -> Option<Self> {
        let suffix = name.strip_prefix("dev.vottery.user.")?;
        Self::ALL.into_iter().find(|kind| kind.suffix() == suffix)
    }
}

/// One user event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "specversion": "1.0", "id": "0193a4e2-7c1f-7b3e-9a4d-2f6c1e8b5a90",
    "source": "/vottery/user-svc", "type": "dev.vottery.user.status_changed", "subject": "42",
    "time": "2026-12-06T02:50:00.123456Z", "datacontenttype": "application/json",
    "data": {"user_id": 42, "actor": {"id": 7, "label": "user:7"}, "request_id": "req-1",
             "changed_fields": ["status"], "transition": {"from": "active", "to": "suspended"},
             "version": 3}
})))]
pub struct UserEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// A UUIDv7, the same on every delivery of this event: deduplicate on it.
    pub id: String,
    /// Always `/vottery/user-svc`.
    pub source: String,
    /// `dev.vottery.user.created`, `.profile_changed`, `.status_changed`, `.role_changed`,
    /// `.deleted`, `.sessions_revoked` or `.erased`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The user's id.
    pub subject: String,
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    pub data: UserEventData,
}

/// What an event says about the change: ids, field names and transitions, never a value of a
/// personal field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEventData {
    pub user_id: i32,
    pub actor: EventActor,
    /// The `X-Request-Id` of the request that made the change.
    pub request_id: String,
    /// The names of the fields the change set or cleared.
    pub changed_fields: Vec<String>,
    /// The status (`status_changed`) or admin role (`role_changed`, when it changed) before
    /// and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    /// The user's record version after the change; absent for `deleted` and
    /// `sessions_revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// How many active sessions ended (`sessions_revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_ended: Option<i64>,
}

/// Who made a change, as its audit record names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventActor {
    /// The acting user's id; absent for a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// `user:<id>` or `service:<name>`.
    pub label: String,
}

/// A value before and after a change; `null` is no value (no admin role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/events` query. Unknown parameters are refused with 422.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct EventQuery {
    /// The `next` cursor of the previous page; from the first event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<u32>,
}

/// `GET /api/events`: events in the order they were committed, and the cursor to ask after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub events: Vec<UserEvent>,
    /// Pass as `after` for the next page; the same cursor when no event followed.
    pub next: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in UserEventType::ALL {
            assert_eq!(UserEventType::from_type_name(&kind.type_name()), Some(kind));
        }
        assert_eq!(
            UserEventType::from_type_name("dev.vottery.user.other"),
            None
        );
    }
}
