//! security-svc settings: `config/default.toml`, compiled in, under the optional file and the
//! `SECURITY_SVC__...` environment (see `vottery_server::settings`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use vottery_common::transit::KeyType;
use vottery_server::db::DatabaseSettings;

use crate::keys::rules::NewKey;
use vottery_server::settings::{
    Environment, MIN_PRODUCTION_SECRET, is_development_secret, list_or_csv,
};
use vottery_server::telemetry::LogSettings;

/// The prefix of this service's environment variables.
pub const ENV_PREFIX: &str = "SECURITY_SVC";
const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub application: ApplicationSettings,
    pub database: DatabaseSettings,
    pub seal: SealSettings,
    pub transit: TransitSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApplicationSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub workers: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SealSettings {
    /// Empty: no development key file.
    pub dev_root_key_file: PathBuf,
    pub key_refresh_interval_ms: u64,
    pub auto_rotate_check_secs: u64,
}

impl SealSettings {
    pub fn dev_root_key_file(&self) -> Option<&PathBuf> {
        (!self.dev_root_key_file.as_os_str().is_empty()).then_some(&self.dev_root_key_file)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransitSettings {
    pub max_batch_items: usize,
    pub max_cached_keys: usize,
    pub remembered_signatures: usize,
    /// Most unwrapped context data keys kept in memory (least recently used evicted).
    pub context_key_cache: usize,
    #[serde(deserialize_with = "list_or_csv")]
    pub bootstrap_keys: Vec<String>,
}

impl TransitSettings {
    /// The keys to create at unseal, parsed from `name:type` entries; `name:type:context_keys`
    /// gives the key a destroyable data key per context (crypto-shredding).
    pub fn bootstrap_keys(&self) -> Result<Vec<(String, NewKey)>, String> {
        self.bootstrap_keys
            .iter()
            .map(|entry| {
                let (name, kind) = entry.split_once(':').ok_or_else(|| {
                    format!("transit.bootstrap_keys entry {entry:?} is not name:type")
                })?;
                if !crate::keys::is_valid_key_name(name.trim()) {
                    return Err(format!(
                        "transit.bootstrap_keys: {name:?} is not a valid key name"
                    ));
                }
                let (kind, context_keys) = match kind.split_once(':') {
                    Some((kind, "context_keys")) => (kind, true),
                    Some(_) => {
                        return Err(format!(
                            "transit.bootstrap_keys entry {entry:?} is not name:type or name:type:context_keys"
                        ));
                    }
                    None => (kind, false),
                };
                let kind = kind
                    .trim()
                    .parse::<KeyType>()
                    .map_err(|error| format!("transit.bootstrap_keys: {error}"))?;
                if context_keys && !kind.is_aead() {
                    return Err(format!(
                        "transit.bootstrap_keys: context_keys is not supported for keys of type {kind}"
                    ));
                }
                let mut key = NewKey::for_upsert(kind, false, false);
                key.context_keys = context_keys;
                Ok((name.trim().to_owned(), key))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenSettings>,
}

/// One caller token and its policy.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    pub secret: SecretString,
    #[serde(deserialize_with = "list_or_csv")]
    pub operations: Vec<String>,
    #[serde(deserialize_with = "list_or_csv")]
    pub keys: Vec<String>,
}

impl Settings {
    /// Loads the layered settings.
    pub fn load() -> Result<Self, config::ConfigError> {
        vottery_server::settings::load(ENV_PREFIX, DEFAULTS)
    }

    /// The defaults alone (tests start from these).
    pub fn defaults() -> Result<Self, config::ConfigError> {
        vottery_server::settings::defaults(DEFAULTS)
    }

    /// Refuses development secrets and shortcuts in production.
    pub fn check(&self) -> Result<(), String> {
        self.transit.bootstrap_keys()?;
        if self.environment != Environment::Production {
            return Ok(());
        }
        if self.seal.dev_root_key_file().is_some() {
            return Err(
                "seal.dev_root_key_file is for development only; production unseals with shares"
                    .into(),
            );
        }
        for (name, token) in &self.auth.tokens {
            let secret = token.secret.expose_secret();
            if secret.is_empty() {
                continue;
            }
            if is_development_secret(secret) {
                return Err(format!(
                    "auth.tokens.{name}.secret is a development secret; set SECURITY_SVC__AUTH__TOKENS__{}__SECRET to at least {MIN_PRODUCTION_SECRET} random characters",
                    name.to_uppercase()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_production_refuses_them() {
        let mut settings = Settings::defaults().unwrap();
        assert!(settings.check().is_ok());
        assert_eq!(
            settings.auth.tokens["user_svc"].keys,
            vec!["vottery-users-*".to_owned()]
        );
        settings.environment = Environment::Production;
        let error = settings.check().unwrap_err();
        assert!(error.contains("development secret"), "{error}");
        assert!(!error.contains("dev-security-admin-token"));
    }
}
