//! Vault's rules for creating, configuring and trimming keys, as pure functions over requests
//! and the current configuration. Messages are Vault's.

use vottery_common::transit::{CreateKeyRequest, KeyConfigRequest, KeyType};

use super::KeyConfig;
use super::db::KeySettingsChange;
use super::material::HMAC_KEY_SIZES;

/// The minimum automatic rotation period Vault accepts.
const MIN_AUTO_ROTATE_SECS: i64 = 3_600;

/// A validated request for a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewKey {
    pub key_type: KeyType,
    pub derived: bool,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_period_secs: i64,
    pub key_size: Option<u32>,
    pub context_keys: bool,
}

impl NewKey {
    /// An upsert from encrypt: the type asked for (default AES-GCM), derived when a context came.
    pub fn for_upsert(key_type: KeyType, derived: bool, convergent: bool) -> Self {
        Self {
            key_type,
            derived,
            convergent_encryption: convergent,
            exportable: false,
            allow_plaintext_backup: false,
            auto_rotate_period_secs: 0,
            key_size: None,
            context_keys: false,
        }
    }

    /// Bytes of the HMAC key each version gets (`key_size` for `hmac` keys).
    pub fn hmac_key_size(&self) -> u32 {
        self.key_size.unwrap_or(32)
    }
}

fn check_auto_rotate(period: i64) -> Result<i64, String> {
    if period == 0 || period >= MIN_AUTO_ROTATE_SECS {
        Ok(period)
    } else {
        Err("auto rotate period must be 0 to disable or at least an hour".into())
    }
}

/// Validates `POST /v1/transit/keys/:name`.
pub fn new_key(request: &CreateKeyRequest) -> Result<NewKey, String> {
    let key_type = match request.key_type.as_deref().map(str::trim) {
        None | Some("") => KeyType::Aes256Gcm96,
        Some(name) => name.parse::<KeyType>().map_err(|error| error.to_string())?,
    };
    let derived = request.derived.unwrap_or(false);
    let convergent = request.convergent_encryption.unwrap_or(false);
    if convergent && !derived {
        return Err("convergent encryption requires derivation to be enabled".into());
    }
    if (derived || convergent) && !key_type.supports_derivation() {
        return Err(format!(
            "key derivation and convergent encryption not supported for keys of type {key_type}"
        ));
    }
    if convergent && key_type == KeyType::Ed25519 {
        return Err("convergent encryption not supported for keys of type ed25519".into());
    }
    let key_size = match (key_type, request.key_size.unwrap_or(0)) {
        (KeyType::Hmac, 0) => Some(32),
        (KeyType::Hmac, size)
            if (i64::from(*HMAC_KEY_SIZES.start())..=i64::from(*HMAC_KEY_SIZES.end()))
                .contains(&size) =>
        {
            Some(size as u32)
        }
        (KeyType::Hmac, size) => return Err(format!("invalid key_size {size}")),
        (_, 0) => None,
        (other, _) => return Err(format!("key_size is not valid for algorithm {other}")),
    };
    let context_keys = request.context_keys.unwrap_or(false);
    if context_keys && !key_type.is_aead() {
        return Err(format!(
            "context_keys is not supported for keys of type {key_type}"
        ));
    }
    if context_keys && derived {
        return Err("context_keys cannot be combined with derived".into());
    }
    Ok(NewKey {
        key_type,
        context_keys,
        derived,
        convergent_encryption: convergent,
        exportable: request.exportable.unwrap_or(false),
        allow_plaintext_backup: request.allow_plaintext_backup.unwrap_or(false),
        auto_rotate_period_secs: check_auto_rotate(request.auto_rotate_period.unwrap_or(0))?,
        key_size,
    })
}

/// The stored settings of a key as they stand.
pub fn current_settings(config: &KeyConfig) -> KeySettingsChange {
    KeySettingsChange {
        deletion_allowed: config.deletion_allowed,
        exportable: config.exportable,
        allow_plaintext_backup: config.allow_plaintext_backup,
        min_decryption_version: config.min_decryption_version as i32,
        min_encryption_version: config.min_encryption_version as i32,
        min_available_version: config.min_available_version as i32,
        auto_rotate_period_secs: config.auto_rotate_period_secs,
    }
}

/// Applies `POST /v1/transit/keys/:name/config`; returns the new settings and any warnings.
pub fn configure(
    config: &KeyConfig,
    request: &KeyConfigRequest,
) -> Result<(KeySettingsChange, Vec<String>), String> {
    let mut next = current_settings(config);
    let mut warnings = Vec::new();
    let latest = config.latest_version as i64;
    if let Some(min_dec) = request.min_decryption_version {
        if min_dec < 0 {
            return Err("min decryption version cannot be negative".into());
        }
        let min_dec = if min_dec == 0 {
            warnings.push("transit key numbering starts at 1; forcing minimum to 1".to_owned());
            1
        } else {
            min_dec
        };
        if min_dec > latest {
            return Err(format!(
                "cannot set min decryption version of {min_dec}, latest key version is {latest}"
            ));
        }
        if min_dec < i64::from(next.min_available_version) {
            return Err(
                "min decryption version should not be less than min available version".into(),
            );
        }
        next.min_decryption_version = min_dec as i32;
    }
    if let Some(min_enc) = request.min_encryption_version {
        if min_enc < 0 {
            return Err("min encryption version cannot be negative".into());
        }
        if min_enc > latest {
            return Err(format!(
                "cannot set min encryption version of {min_enc}, latest key version is {latest}"
            ));
        }
        if min_enc > 0 && min_enc < i64::from(next.min_available_version) {
            return Err(
                "min encryption version should not be less than min available version".into(),
            );
        }
        next.min_encryption_version = min_enc as i32;
    }
    if next.min_encryption_version > 0 && next.min_encryption_version < next.min_decryption_version
    {
        return Err(format!(
            "cannot set min encryption/decryption values; min encryption version of {} must be greater than or equal to min decryption version of {}",
            next.min_encryption_version, next.min_decryption_version
        ));
    }
    if let Some(allowed) = request.deletion_allowed {
        next.deletion_allowed = allowed;
    }
    if let Some(exportable) = request.exportable {
        if config.exportable && !exportable {
            return Err("exportable cannot be disabled once enabled".into());
        }
        next.exportable = exportable;
    }
    if let Some(allow) = request.allow_plaintext_backup {
        if config.allow_plaintext_backup && !allow {
            return Err("allow_plaintext_backup cannot be disabled once enabled".into());
        }
        next.allow_plaintext_backup = allow;
    }
    if let Some(period) = request.auto_rotate_period {
        next.auto_rotate_period_secs = check_auto_rotate(period)?;
    }
    Ok((next, warnings))
}

/// Applies `POST /v1/transit/keys/:name/trim`.
pub fn trim(config: &KeyConfig, min_available: Option<i64>) -> Result<KeySettingsChange, String> {
    let min_available = min_available.ok_or("missing min_available_version")?;
    if min_available < 0 {
        return Err("minimum available version cannot be negative".into());
    }
    if min_available == 0 {
        return Err("minimum available version should be positive".into());
    }
    if min_available < i64::from(config.min_available_version) {
        return Err("minimum available version cannot be decremented".into());
    }
    if config.min_encryption_version == 0 {
        return Err(
            "minimum available version cannot be set when minimum encryption version is not set"
                .into(),
        );
    }
    if min_available > i64::from(config.min_encryption_version) {
        return Err(
            "minimum available version cannot be greater than minimum encryption version".into(),
        );
    }
    if min_available > i64::from(config.min_decryption_version) {
        return Err(
            "minimum available version cannot be greater than minimum decryption version".into(),
        );
    }
    let mut next = current_settings(config);
    next.min_available_version = min_available as i32;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(latest: u32) -> KeyConfig {
        KeyConfig::aes_for_tests(latest)
    }

    fn create(json: &str) -> Result<NewKey, String> {
        new_key(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn new_keys_default_to_aes_and_check_their_options() {
        assert_eq!(create("{}").unwrap().key_type, KeyType::Aes256Gcm96);
        assert_eq!(create(r#"{"type":"hmac"}"#).unwrap().key_size, Some(32));
        assert_eq!(
            create(r#"{"type":"hmac","key_size":64}"#).unwrap().key_size,
            Some(64)
        );
        assert_eq!(
            create(r#"{"type":"hmac","key_size":8}"#).unwrap_err(),
            "invalid key_size 8"
        );
        assert_eq!(
            create(r#"{"type":"rsa-9"}"#).unwrap_err(),
            "unknown key type rsa-9"
        );
        assert_eq!(
            create(r#"{"convergent_encryption":true}"#).unwrap_err(),
            "convergent encryption requires derivation to be enabled"
        );
        assert!(create(r#"{"type":"ecdsa-p256","derived":true}"#).is_err());
        assert!(create(r#"{"auto_rotate_period":"10m"}"#).is_err());
        assert_eq!(
            create(r#"{"auto_rotate_period":"24h"}"#)
                .unwrap()
                .auto_rotate_period_secs,
            86_400
        );
    }

    #[test]
    fn config_keeps_the_version_bounds_consistent() {
        let key = config(3);
        let change = |json: &str| configure(&key, &serde_json::from_str(json).unwrap());
        let (next, _) =
            change(r#"{"min_decryption_version":2,"min_encryption_version":3}"#).unwrap();
        assert_eq!(
            (next.min_decryption_version, next.min_encryption_version),
            (2, 3)
        );
        assert_eq!(
            change(r#"{"min_decryption_version":4}"#).unwrap_err(),
            "cannot set min decryption version of 4, latest key version is 3"
        );
        assert!(change(r#"{"min_decryption_version":3,"min_encryption_version":2}"#).is_err());
        let (next, warnings) = change(r#"{"min_decryption_version":0}"#).unwrap();
        assert_eq!((next.min_decryption_version, warnings.len()), (1, 1));
        assert!(
            change(r#"{"deletion_allowed":true}"#)
                .unwrap()
                .0
                .deletion_allowed
        );
    }

    #[test]
    fn trim_needs_both_minimums_at_or_above_it() {
        let mut key = config(5);
        assert!(
            trim(&key, Some(2))
                .unwrap_err()
                .contains("minimum encryption version is not set")
        );
        key.min_encryption_version = 4;
        key.min_decryption_version = 3;
        assert_eq!(trim(&key, Some(3)).unwrap().min_available_version, 3);
        assert!(
            trim(&key, Some(4))
                .unwrap_err()
                .contains("minimum decryption version")
        );
        assert!(trim(&key, None).is_err());
        key.min_available_version = 3;
        assert!(trim(&key, Some(2)).unwrap_err().contains("decremented"));
    }
}
