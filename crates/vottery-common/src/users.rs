//! user-svc's request and response bodies.
//!
//! Request types are for clients (other services, tests); user-svc itself reads request bodies
//! field by field so that it can name every bad field at once.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::problem::FieldError;

/// `POST /api/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUser {
    pub sngine_email: String,
    pub sngine_phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    #[serde(flatten)]
    pub profile: ProfileUpdate,
}

/// `PUT /api/users/:id/profile`: only the fields present change; `null` clears a field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications_enabled: Option<bool>,
}

/// `PUT /api/users/:id/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusUpdate {
    pub status: String,
}

/// `PUT /api/users/:id/role`: only the fields present change; `"admin_role": null` revokes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_plan: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_expires_at: Option<Option<DateTime<Utc>>>,
}

/// `GET /api/users` query: paging, and filters on indexed columns only. Unknown or repeated
/// parameters are refused with 422.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct UserListQuery {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// Rows per page, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<u32>,
    /// `pending`, `verified`, `active` or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `voter`, `individual_creator` or `organization_creator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// `manager`, `admin`, `moderator`, `auditor`, `editor`, `advertiser` or `analyst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<String>,
    /// `free` or `subscribed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    /// ISO 3166-1 alpha-2 country code, such as `DE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Exact email match (through the blind index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A bare page query (`GET /api/users/:id/audit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct PageQuery {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// Rows per page, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<u32>,
}

/// The outcome of checking a record's signature on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureCheck {
    pub valid: bool,
    /// The signing key version, when the record carries a signature.
    pub key_version: Option<u32>,
    pub algorithm: String,
}

/// A user as user-svc returns it: PII decrypted (or masked for low ranks), `age` derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i32,
    pub sngine_email: Option<String>,
    pub sngine_phone: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub phone_verified_at: Option<DateTime<Utc>>,
    pub biometric_registered_at: Option<DateTime<Utc>>,
    pub status: String,
    pub last_login: Option<DateTime<Utc>>,
    pub user_type: String,
    pub admin_role: Option<String>,
    pub subscription_status: String,
    pub subscription_plan: Option<String>,
    pub subscription_expires_at: Option<DateTime<Utc>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    /// Whole years, derived from `date_of_birth`; never stored.
    pub age: Option<i32>,
    pub gender: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub language: Option<String>,
    pub notifications_enabled: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The row version; also the `ETag`.
    pub version: i64,
    pub signature: SignatureCheck,
    /// Email and phone are masked for this caller's rank.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub contacts_masked: bool,
    /// Fields whose stored value could not be read back (a ciphertext that belongs to another
    /// record or column); they are returned as `null`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity_errors: Vec<FieldError>,
}

/// `GET /api/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPage {
    pub data: Vec<UserView>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i32,
    /// The user the action concerns.
    pub user_id: Option<i32>,
    /// Who acted (absent for service callers and for rows written by other services).
    pub actor_id: Option<i32>,
    pub action: String,
    pub details: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub success: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    /// Position in this user's hash chain; absent for rows written by other services.
    pub chain_seq: Option<i64>,
}

/// Where a hash chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainBreak {
    /// The chain position at which the break is detected.
    pub chain_seq: i64,
    /// The audit row there, when it still exists.
    pub audit_id: Option<i32>,
    /// `edited`, `missing` (rows deleted before this position) or `truncated` (rows deleted at the end).
    pub kind: String,
    pub detail: String,
}

/// The result of re-computing a user's audit hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainCheck {
    pub valid: bool,
    /// Chained rows checked.
    pub checked: i64,
    pub broken_at: Option<ChainBreak>,
}

/// `GET /api/users/:id/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
    pub chain: ChainCheck,
}

/// One rank of the admin hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleInfo {
    pub role: String,
    /// 7 for manager down to 1 for analyst.
    pub rank: u8,
    pub can: Vec<String>,
}

/// `GET /api/roles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Roles {
    /// Highest first.
    pub hierarchy: Vec<RoleInfo>,
    pub user_types: Vec<String>,
    pub subscription_statuses: Vec<String>,
    pub statuses: Vec<String>,
    pub rules: Vec<String>,
}
