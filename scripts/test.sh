#!/usr/bin/env bash
# Runs every check the project has: formatting, clippy with warnings denied, and all
# test suites against a real PostgreSQL and Redis (provisioned when none is configured).
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh

ensure_postgres
ensure_redis
ensure_nginx

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"

log "all checks passed"
