//! Types shared by the Vottery services and their clients.
//!
//! * [`vault`], [`transit`] and [`sys`] describe security-svc's Vault-compatible wire format.
//! * [`problem`] is the RFC 9457 error body both services answer with outside that surface.
//! * [`users`] holds user-svc's request and response bodies.
//! * `client` (feature `client`) is a typed async client for security-svc.
//!
//! Everything here is plain serde: no database or web framework types.

pub mod flex;
pub mod problem;
pub mod sys;
pub mod transit;
pub mod users;
pub mod vault;

#[cfg(feature = "client")]
pub mod client;
