//! The tracing subscriber: an env-filter and either JSON lines or human-readable text on stdout.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// `[log]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// An `EnvFilter` directive such as `info` or `info,security_svc=debug`. `RUST_LOG` wins.
    pub filter: String,
    /// `json` or `text`.
    pub format: String,
    /// Level of the access-log line of successful requests: `info` (default) or `debug`.
    #[serde(default = "default_access_level")]
    pub access: String,
}

fn default_access_level() -> String {
    "info".into()
}

impl LogSettings {
    /// The configured access-log level for successful requests.
    pub fn access_level(&self) -> tracing::Level {
        if self.access.eq_ignore_ascii_case("debug") {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        }
    }
}

/// Loggers that print query parameters (and so PII ciphertext or tokens) at debug and below.
const QUIET_TARGETS: [&str; 2] = ["tokio_postgres", "diesel"];

/// The filter with the query-logging targets capped at `info` unless the filter names them.
fn directives(filter: &str) -> String {
    let mut out = filter.to_owned();
    for target in QUIET_TARGETS {
        let named = filter
            .split(',')
            .any(|d| d.trim().split('=').next() == Some(target));
        if !named {
            out.push_str(&format!(",{target}=info"));
        }
    }
    out
}

/// Installs the global subscriber once; later calls are ignored (tests build many apps).
pub fn init(settings: &LogSettings) {
    let configured = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = EnvFilter::try_new(directives(&configured))
        .unwrap_or_else(|_| EnvFilter::new(directives(&settings.filter)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameter_loggers_stay_at_info_unless_named() {
        assert_eq!(directives("debug"), "debug,tokio_postgres=info,diesel=info");
        assert_eq!(
            directives("trace,tokio_postgres=trace"),
            "trace,tokio_postgres=trace,diesel=info"
        );
    }
}
