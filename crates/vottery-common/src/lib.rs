//! Types shared by the Vottery services and their clients.
//!
//! * [`vault`], [`transit`] and [`sys`] describe security-svc's Vault-compatible wire format.
//! * [`problem`] is the RFC 9457 error body both services answer with outside that surface.
//! * `guardians` (feature `guardians`) holds the bodies of security-svc's guardian routes.
//! * [`users`] holds user-svc's request and response bodies; [`sessions`] those of a user's
//!   devices and sessions; [`export`] the export of everything held about a user; [`events`]
//!   the CloudEvents user-svc publishes about changes to users.
//! * [`reference`] lists the time zones and countries user-svc accepts.
//! * [`remembered`] is a bounded memory of successful checks (signatures found valid).
//! * `client` (feature `client`) is a typed async client for security-svc.
//!
//! Everything here is plain serde: no database or web framework types.

pub mod events;
pub mod export;
pub mod flex;
pub mod problem;
pub mod reference;
pub mod remembered;
pub mod sessions;
pub mod sys;
pub mod transit;
pub mod users;
pub mod vault;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "guardians")]
pub mod guardians;

/// How long the services' HTTP servers keep an idle client connection open. A client that pools
/// connections to them drops its idle ones sooner (`client::POOL_IDLE_TIMEOUT`).
pub const SERVER_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);
