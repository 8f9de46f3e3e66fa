//! user-svc integration tests: the real service on a random port, with a real security-svc
//! in-process and a real PostgreSQL database per test, driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod audit;
mod auth;
mod bad_input;
mod batching;
mod cloudevents;
mod concurrency;
mod encrypt_existing;
mod events;
mod export;
mod gateway;
mod integrity;
mod migrations;
mod openapi;
mod operational;
mod outage;
mod pii;
mod profile;
mod rate_limit;
mod relay;
mod rewrap;
mod roles;
mod sessions;
mod status;
mod users;
