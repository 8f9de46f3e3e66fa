//! security-svc: encryption as a service behind a Shamir-sealed root key, speaking the Vault
//! Transit wire protocol.
//!
//! * [`seal`]: init, unseal with threshold shares, the root-key barrier.
//! * [`keys`]: key rings, their material and operations, storage and cache.
//! * [`routes`]: the Vault-compatible HTTP surface and the operational endpoints.
//! * [`auth`]: caller tokens and policies.
//! * [`guardians`]: ElectionGuard guardians: the key ceremony and partial decryptions.

pub mod auth;
pub mod configuration;
pub mod error;
pub mod guardians;
pub mod keys;
pub mod metrics;
pub mod routes;
pub mod schema;
pub mod seal;
pub mod startup;

pub use configuration::Settings;
pub use startup::{Application, MIGRATIONS, StartupError};
