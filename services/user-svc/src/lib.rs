//! user-svc: users, profiles and roles on the customer's `vottery_*` tables. PII is encrypted
//! through security-svc and bound to its row and column, every record is signed and checked on
//! read, and every change (and every refused attempt) is audited in a hash chain.
//!
//! * [`domain`]: validated values, roles, the lifecycle.
//! * [`users`]: the use cases, their queries, views and input parsing.
//! * [`vault`]: the calls to security-svc; [`record`]: the stored row and its signed form.
//! * [`audit`]: the hash-chained audit trail.
//! * [`auth`], [`ratelimit`], [`routes`]: the HTTP edge; [`idempotency`]: retries of writes.

pub mod audit;
pub mod auth;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ratelimit;
pub mod record;
pub mod reread;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod stored;
pub mod users;
pub mod vault;

pub use configuration::Settings;
pub use startup::{Application, MIGRATIONS, StartupError};
