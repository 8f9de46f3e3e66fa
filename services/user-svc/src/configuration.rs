//! user-svc settings: `config/default.toml`, compiled in, under the optional file and the
//! `USER_SVC__...` environment (see `vottery_server::settings`).

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use vottery_common::client::ClientSettings;
use vottery_server::db::DatabaseSettings;
use vottery_server::settings::{
    Environment, MIN_PRODUCTION_SECRET, is_development_secret, list_or_csv,
};
use vottery_server::telemetry::LogSettings;

pub const ENV_PREFIX: &str = "USER_SVC";
const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub application: ApplicationSettings,
    pub database: DatabaseSettings,
    pub security: SecuritySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub events: EventSettings,
    pub idempotency: IdempotencySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApplicationSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
    pub list_total_cache_ms: u64,
}

/// How user-svc reaches security-svc, and which transit keys it uses.
#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    pub url: String,
    pub token: SecretString,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub pool_max_idle: usize,
    pub pii_key: String,
    /// The key rows encrypted before per-user context keys are under (without a context),
    /// until `user-svc rewrap` moves them; empty: `pii_key`.
    #[serde(default)]
    pub shared_pii_key: String,
    pub index_key: String,
    pub signing_key: String,
    /// How long the signing key's public versions are used before they are read again, in ms.
    pub signing_key_refresh_ms: u64,
    /// Most valid record signatures remembered per generation; 0 checks each one in full.
    pub remembered_signatures: usize,
    /// How many ids after a newly reserved one get their context keys made ahead, in one call
    /// per block; 0 leaves each create to make its own.
    pub contexts_ahead: usize,
}

impl SecuritySettings {
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            base_url: self.url.clone(),
            token: self.token.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            pool_max_idle_per_host: self.pool_max_idle,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub algorithm: String,
    pub jwt_secret: SecretString,
    pub public_key_pem: String,
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub user_id_claim: String,
    pub leeway_secs: u64,
    #[serde(default)]
    pub service_tokens: BTreeMap<String, ServiceToken>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceToken {
    pub secret: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub per_ip_per_minute: u32,
    pub per_user_per_minute: u32,
    pub redis_url: String,
}

/// User events: the relay of the outbox to NATS JetStream, and how long relayed rows are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Whether changes write their events to the outbox. Off, no event is written, the relay
    /// does not run, and `GET /api/events` serves only what was written before.
    pub recorded: bool,
    /// The NATS server (`nats://host:4222`); empty turns the relay off (the feed still works).
    pub nats_url: String,
    /// Outbox rows published per round.
    pub batch_size: u32,
    /// The pause between rounds that found nothing left to publish, in ms.
    pub poll_interval_ms: u64,
    /// How long a publish waits for JetStream's acknowledgement, in ms.
    pub publish_timeout_ms: u64,
    /// Relayed rows older than this are pruned from the outbox, in hours.
    pub retention_hours: u64,
}

/// `Idempotency-Key`: how long a running request holds its key, and how long answers are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    /// How long a request holds its key while it runs, in seconds: a retry within it is 409,
    /// after it (the first request died before committing) the retry runs. Longer than any
    /// request takes.
    pub lease_seconds: u64,
    /// Keys and their answers are kept this long, in hours, then pruned.
    pub retention_hours: u64,
}

impl EventSettings {
    /// Whether a relay runs.
    pub fn relays(&self) -> bool {
        self.recorded && !self.nats_url.trim().is_empty()
    }
}

impl Settings {
    pub fn load() -> Result<Self, config::ConfigError> {
        vottery_server::settings::load(ENV_PREFIX, DEFAULTS)
    }

    /// The defaults alone (tests start from these).
    pub fn defaults() -> Result<Self, config::ConfigError> {
        vottery_server::settings::defaults(DEFAULTS)
    }

    /// Refuses development secrets in production.
    pub fn check(&self) -> Result<(), String> {
        if self.environment != Environment::Production {
            return Ok(());
        }
        if self.auth.algorithm == "HS256"
            && is_development_secret(self.auth.jwt_secret.expose_secret())
        {
            return Err(format!(
                "auth.jwt_secret is a development secret; set USER_SVC__AUTH__JWT_SECRET to at least {MIN_PRODUCTION_SECRET} random characters"
            ));
        }
        if is_development_secret(self.security.token.expose_secret()) {
            return Err(
                "security.token is a development token; set USER_SVC__SECURITY__TOKEN".into(),
            );
        }
        for (name, token) in &self.auth.service_tokens {
            let secret = token.secret.expose_secret();
            if !secret.is_empty() && is_development_secret(secret) {
                return Err(format!(
                    "auth.service_tokens.{name}.secret is a development secret; set USER_SVC__AUTH__SERVICE_TOKENS__{}__SECRET",
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
        settings.environment = Environment::Production;
        let error = settings.check().unwrap_err();
        assert!(error.contains("jwt_secret") && !error.contains("dev-jwt-secret"));
    }
}
