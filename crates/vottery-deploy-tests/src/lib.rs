//! Test-only crate: `tests/stack.rs` fails when the container stack (deploy/docker-compose.yml,
//! the services' Dockerfiles) and the native one (scripts/dev.sh, deploy/env/*.env) drift apart.
