//! Layered configuration: a defaults file compiled into the binary, an optional file named by
//! `<PREFIX>_CONFIG`, then environment variables `<PREFIX>__SECTION__KEY`. `DATABASE_URL` is
//! honoured when the prefixed database URL is not set.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A list given either as an array or as one comma-separated string (the form environment
/// variables can carry).
pub fn list_or_csv<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(deserializer)? {
        ListOrCsv::List(items) => items,
        ListOrCsv::Csv(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Where the service runs; production refuses development secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// Secrets shorter than this are development secrets, which production refuses.
pub const MIN_PRODUCTION_SECRET: usize = 32;

/// A secret production refuses: a `dev-` one, or one shorter than [`MIN_PRODUCTION_SECRET`].
pub fn is_development_secret(secret: &str) -> bool {
    secret.starts_with("dev-") || secret.len() < MIN_PRODUCTION_SECRET
}

/// `T` from `defaults` (TOML) alone, without a file or the environment (tests start from these).
pub fn defaults<T: DeserializeOwned>(defaults: &str) -> Result<T, config::ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml))
        .build()?
        .try_deserialize()
}

/// Loads `T` from `defaults` (TOML), the optional file and the environment.
pub fn load<T: DeserializeOwned>(prefix: &str, defaults: &str) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Ok(path) = std::env::var(format!("{prefix}_CONFIG")) {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    if std::env::var(format!("{prefix}__DATABASE__URL")).is_err()
        && let Ok(url) = std::env::var("DATABASE_URL")
    {
        builder = builder.set_override("database.url", url)?;
    }
    builder.build()?.try_deserialize()
}
