//! user-svc's export of everything it holds about a user (`GET /api/users/:id/export`, GDPR
//! articles 15 and 20): the profile in clear, devices, sessions, biometrics metadata and the
//! audit trail with the check of its hash chain. The document is streamed in this member
//! order; `audit_chain` comes last because it is computed while the trail is written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sessions::{DeviceView, SessionView};
use crate::users::{ChainBreak, ChainCheck, UserView};

/// `GET /api/users/:id/export`: one JSON document, served as an attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserExport {
    #[serde(flatten)]
    pub head: ExportHead,
    /// Every audit row about the user (`user_id` = the user), oldest first, as stored.
    pub audit_trail: Vec<ExportedAuditRow>,
    /// The check of the trail's hash chain, made while the trail was written.
    pub audit_chain: TrailCheck,
}

/// The members of the export before its audit trail: everything but the trail is bounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportHead {
    pub user_id: i32,
    pub exported_at: DateTime<Utc>,
    /// The user as `GET /api/users/:id` shows them, PII in clear, with the signature check.
    pub profile: UserView,
    /// Every device, with the biometrics enrolled on it.
    pub devices: Vec<DeviceView>,
    /// Every session, active first and then the newest; never a token.
    pub sessions: Vec<SessionView>,
    /// Every biometric: its type, device and dates only.
    pub biometrics: Vec<ExportedBiometric>,
}

/// A biometric the user enrolled: never its hash, public key or credential id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "biometric_type": "fingerprint", "device_id": 7, "is_active": true,
    "created_at": "2026-11-20T17:04:40Z"
})))]
pub struct ExportedBiometric {
    pub biometric_type: String,
    pub device_id: i32,
    pub is_active: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// An audit row as stored, with its chain columns, so that its hash can be recomputed: the
/// SHA-256 of `prev_hash`, a newline and the RFC 8785 form of the row's other columns
/// (`ip_address` and `created_at` in the text given here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportedAuditRow {
    pub id: i32,
    pub user_id: Option<i32>,
    /// Who acted (absent for service callers and for rows written by other services).
    pub actor_id: Option<i32>,
    pub device_id: Option<i32>,
    pub action: String,
    pub details: Option<serde_json::Value>,
    /// As stored, with its prefix length (`192.0.2.7/32`).
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub success: Option<bool>,
    /// UTC with microseconds (`2026-11-29T21:00:00.000001Z`).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: Option<String>,
    pub request_id: Option<String>,
    /// The chain the row belongs to (the user's id; 0 for events about no user); absent for
    /// rows written by other services.
    pub chain_key: Option<i64>,
    pub chain_seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub row_hash: Option<String>,
}

/// What checking an exported trail found. Each user's rows form a chain of their own
/// (`chain_key` = the user's id): every row of it is checked in order for its position
/// (`chain_seq` 1, 2, …), its link (`prev_hash` = the previous row's `row_hash`) and its own
/// hash, and the last row against the chain's head, so an edited, removed or truncated row
/// is found. A row about the user filed in another chain links to that chain's rows, which
/// are not the user's: only its own hash is recomputed from its stored `prev_hash`. Rows
/// without chain columns (written by other services) are covered by no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrailCheck {
    /// The user's chain is intact and every row in another chain hashes as stored.
    pub valid: bool,
    /// Rows in the trail.
    pub rows: i64,
    /// The user's own chain, checked link by link up to its head.
    pub chain: ChainCheck,
    /// Rows with no chain columns.
    pub unchained: i64,
    /// Rows filed in another chain, whose predecessor is not the user's.
    pub other_chain: i64,
    /// The first of those whose own hash does not recompute.
    pub other_chain_broken: Option<ChainBreak>,
}
