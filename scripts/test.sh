#!/usr/bin/env bash
# Runs every check the project has: formatting, clippy with warnings denied, and all
# test suites against a real PostgreSQL, Redis and NATS with JetStream (provisioned when none is
# configured), the fault runs, the generated-client and schemathesis contracts, the README's
# guardians walkthrough, and every other command the README and docs/ show.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh

ensure_postgres
ensure_redis
ensure_nats
ensure_nginx
ensure_electionguard
ensure_cloudevents

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Each image builds one service alone (services/*/Dockerfile), so shared crates get only that
# service's features: check each the same way.
for service in security-svc user-svc; do
  log "cargo check -p $service (alone, as its image builds it)"
  cargo check --locked -p "$service" --bins
done

log "cargo test"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
scripts/faults.sh  # each fault under load, then the audit: one line per fault

log "contracts: generated clients and schemathesis against the OpenAPI documents"
scripts/contracts.sh

log "the README's guardians walkthrough, as written"
scripts/guardians/walkthrough.sh

log "every other command the README and docs/ show, as written"
scripts/docs/examples.sh

log "all checks passed"
