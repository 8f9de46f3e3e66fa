//! user-svc's bodies for a user's devices and sessions (`/api/users/:id/devices`,
//! `/api/users/:id/sessions`): what the auth- and biometric-services recorded, without any
//! secret. No session or refresh token, no device fingerprint, and of a biometric neither its
//! hash, its public key nor its credential id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A device the user signed in from, with the biometrics enrolled on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": 7, "device_type": "mobile", "browser_name": "Safari", "browser_version": "18.1",
    "os_name": "iOS", "os_version": "18.1", "ip_address": "203.0.113.24", "is_active": true,
    "last_used": "2026-12-01T08:15:00Z", "created_at": "2026-11-20T17:02:11Z",
    "biometrics": [{"biometric_type": "fingerprint", "is_active": true, "created_at": "2026-11-20T17:04:40Z"}]
})))]
pub struct DeviceView {
    pub id: i32,
    /// As the auth-service recorded it, such as `mobile`, `desktop` or `tablet`.
    pub device_type: String,
    pub browser_name: Option<String>,
    pub browser_version: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    /// The address the device was last seen from.
    pub ip_address: Option<String>,
    pub is_active: bool,
    pub last_used: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    /// The biometrics enrolled on this device.
    pub biometrics: Vec<BiometricView>,
}

/// A biometric enrolled on a device: its type and dates only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "biometric_type": "fingerprint", "is_active": true, "created_at": "2026-11-20T17:04:40Z"
})))]
pub struct BiometricView {
    /// As the biometric-service recorded it, such as `fingerprint` or `face`.
    pub biometric_type: String,
    pub is_active: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /api/users/:id/devices`: the most recently used first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DevicePage {
    pub data: Vec<DeviceView>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}

/// The device a session was opened on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": 7, "device_type": "mobile", "browser_name": "Safari", "os_name": "iOS"
})))]
pub struct SessionDevice {
    pub id: i32,
    pub device_type: String,
    pub browser_name: Option<String>,
    pub os_name: Option<String>,
}

/// A session the auth-service opened, without its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": 31,
    "device": {"id": 7, "device_type": "mobile", "browser_name": "Safari", "os_name": "iOS"},
    "ip_address": "203.0.113.24", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
    "created_at": "2026-12-01T08:15:00Z", "expires_at": "2026-12-01T09:15:00Z", "is_active": true
})))]
pub struct SessionView {
    pub id: i32,
    pub device: SessionDevice,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// False once the session was ended (signed out, ended here, or its user suspended).
    pub is_active: bool,
}

/// `GET /api/users/:id/sessions`: active sessions first, then the newest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionPage {
    pub data: Vec<SessionView>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}

/// `DELETE /api/users/:id/sessions`: how many active sessions were ended (0 when none was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"sessions_ended": 2})))]
pub struct SessionsEnded {
    pub sessions_ended: i64,
}
