//! Server plumbing shared by security-svc and user-svc.
//!
//! * [`settings`]: layered configuration (defaults, optional file, prefixed environment).
//! * [`db`]: the PostgreSQL pool and embedded migrations.
//! * [`health`]: a local health probe for container health checks.
//! * [`listen`]: the listening socket and the number of HTTP workers.
//! * [`telemetry`]: the tracing subscriber.
//! * [`observe`]: the request-id, access-log and HTTP-metrics middleware.
//! * [`metrics`]: lock-light Prometheus counters and histograms.
//! * [`problem`]: RFC 9457 responses and extractor error handlers.
//! * [`openapi`]: Swagger UI over a service's OpenAPI document, and its checked-in form.

pub mod db;
pub mod health;
pub mod listen;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod settings;
pub mod telemetry;
