//! The response envelopes of the Vault HTTP API.

use serde::{Deserialize, Serialize};

/// The envelope around every successful logical response (`{"data": ...}` plus Vault's
/// bookkeeping fields, which this service fills with their neutral values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VaultResponse<T> {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub lease_id: String,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub lease_duration: u64,
    pub data: T,
    #[serde(default)]
    pub wrap_info: Option<serde_json::Value>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
    #[serde(default)]
    pub mount_type: String,
}

impl<T> VaultResponse<T> {
    /// Wraps `data` for a route of the given mount (`"transit"`, or `""` for sys routes).
    pub fn new(request_id: impl Into<String>, mount_type: &str, data: T) -> Self {
        Self {
            request_id: request_id.into(),
            lease_id: String::new(),
            renewable: false,
            lease_duration: 0,
            data,
            wrap_info: None,
            warnings: None,
            auth: None,
            mount_type: mount_type.to_owned(),
        }
    }

    /// Adds warnings (Vault reports ignored parameters and forced values this way).
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = (!warnings.is_empty()).then_some(warnings);
        self
    }
}

/// The body of every Vault error response: `{"errors": ["..."]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VaultErrors {
    pub errors: Vec<String>,
}

impl VaultErrors {
    pub fn one(message: impl Into<String>) -> Self {
        Self {
            errors: vec![message.into()],
        }
    }

    pub fn none() -> Self {
        Self { errors: Vec::new() }
    }
}

/// The message Vault answers every logical route with while sealed (HTTP 503).
pub const SEALED_MESSAGE: &str = "Vault is sealed";
/// The message for a missing or wrong token, or an operation outside the token's policy (HTTP 403).
pub const PERMISSION_DENIED: &str = "permission denied";
