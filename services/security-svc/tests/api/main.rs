//! security-svc integration tests: the real service on a random port over a real PostgreSQL
//! database per test, driven through the Vault wire protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod bad_input;
mod batch;
mod context_keys;
mod crypt;
mod guardians;
mod health;
mod keys;
mod misc;
mod multi_instance;
mod openapi;
mod policy;
mod rotation;
mod seal;
mod sign;
mod transactions;
