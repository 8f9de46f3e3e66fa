//! Bodies of the Vault `sys` routes security-svc serves: init, unseal, seal status, health.

use serde::{Deserialize, Serialize};

use crate::flex;

/// `PUT /v1/sys/init`: how many shares to split the new root key into, and how many unseal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InitRequest {
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_shares: Option<i64>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_threshold: Option<i64>,
    /// Accepted for compatibility; PGP-wrapped shares are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgp_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_token_pgp_key: Option<String>,
}

/// The shares of a new root key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InitResponse {
    /// Hex-encoded shares.
    pub keys: Vec<String>,
    /// The same shares, base64-encoded.
    pub keys_base64: Vec<String>,
    /// A token with every permission, for the operator.
    pub root_token: String,
}

/// `GET /v1/sys/init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InitStatus {
    pub initialized: bool,
}

/// `PUT /v1/sys/unseal`: one share, or `reset` to discard the shares given so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsealRequest {
    #[serde(default, alias = "Key", skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, alias = "Reset", deserialize_with = "flex::opt_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    #[serde(default, alias = "Migrate", deserialize_with = "flex::opt_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<bool>,
}

/// `GET /v1/sys/seal-status`, and the answer to every unseal request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealStatus {
    #[serde(rename = "type")]
    pub seal_type: String,
    pub initialized: bool,
    pub sealed: bool,
    /// Threshold: shares needed to unseal.
    pub t: u8,
    /// Number of shares the root key was split into.
    pub n: u8,
    /// Shares accepted towards the current unseal attempt.
    pub progress: u8,
    /// Identifies the current unseal attempt; empty when none is in progress.
    pub nonce: String,
    pub version: String,
    #[serde(default)]
    pub build_date: String,
    #[serde(default)]
    pub migration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default)]
    pub recovery_seal: bool,
    #[serde(default)]
    pub storage_type: String,
}

/// `GET /v1/sys/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    pub initialized: bool,
    pub sealed: bool,
    pub standby: bool,
    pub performance_standby: bool,
    pub replication_performance_mode: String,
    pub replication_dr_mode: String,
    pub server_time_utc: i64,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}
