//! Contract tests between user-svc and security-svc: user-svc's own client (`user_svc::vault`
//! over `vottery_common::client`) against a real security-svc, with the shared DTOs of
//! `vottery-common` checked against the wire both ways. Every call user-svc makes is covered,
//! and every failure it maps to a status of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod errors;
mod operations;
mod wire;
