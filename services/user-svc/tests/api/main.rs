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
mod dropped_connections;
mod encrypt_existing;
mod erase;
mod events;
mod export;
mod gateway;
mod idempotency;
mod integrity;
mod migrations;
mod nats_server;
mod openapi;
mod operational;
mod outage;
mod pagination;
mod pii;
mod profile;
mod rate_limit;
mod relay;
mod relay_faults;
mod rewrap;
mod roles;
mod sessions;
mod status;
mod users;
