#!/usr/bin/env bash
# bench_encrypt_existing — `user-svc encrypt-existing` rows/s, two binaries compared on the same
# data: N legacy plaintext rows (scripts/lib/bench_users_1m.sh's legacy_users) in a template
# database, then, ROUNDS times, each binary (in alternating order) upgrades a fresh copy of it
# with its own security-svc (release, started on the copy, so that no context key is made
# before the run). Prints each run's rate and each binary's median.
#
#   scripts/lib/bench_encrypt_existing.sh BEFORE_BIN AFTER_BIN [N] [ROUNDS] [BATCH_SIZE]
#
# Needs DATABASE_URL (a PostgreSQL superuser URL), psql, curl, and a release security-svc
# (BENCH_SECURITY_BIN, default target/release/security-svc).
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=bench_users_1m.sh
. scripts/lib/bench_users_1m.sh

BEFORE=$1 AFTER=$2 COUNT=${3:-20000} ROUNDS=${4:-3} BATCH=${5:-200}
PORT=${BENCH_ENCRYPT_SECURITY_PORT:-18321}
SECURITY_BIN=${BENCH_SECURITY_BIN:-./target/release/security-svc}
WORK=$(mktemp -d /tmp/bench-encrypt-existing.XXXXXX)
ADMIN_TOKEN=bench-security-admin-token
USER_SVC_TOKEN=bench-user-svc-token
TEMPLATE=vottery_bench_encrypt_template
SECURITY_PID=

url_of() { printf '%s/%s' "${DATABASE_URL%/*}" "$1"; }
sql() { psql "$DATABASE_URL" -XAqt -v ON_ERROR_STOP=1 -c "$1"; }
stop_security() {
  [ -n "$SECURITY_PID" ] || return 0
  kill "$SECURITY_PID" 2>/dev/null || true
  wait "$SECURITY_PID" 2>/dev/null || true
  SECURITY_PID=
}
trap stop_security EXIT

# run_security DB_URL — security-svc on $PORT, unsealed with the template's root key.
run_security() {
  ! curl -fs -o /dev/null "http://127.0.0.1:$PORT/health/ready" ||
    { echo "port $PORT is in use; set BENCH_ENCRYPT_SECURITY_PORT" >&2; exit 1; }
  DATABASE_URL=$1 SECURITY_SVC__APPLICATION__PORT=$PORT \
    SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE="$WORK/root.key" SECURITY_SVC__LOG__FILTER=warn \
    SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET=$ADMIN_TOKEN \
    SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET=$USER_SVC_TOKEN \
    "$SECURITY_BIN" >>"$WORK/security-svc.log" 2>&1 &
  SECURITY_PID=$!
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/health/ready" && return 0
    sleep 0.1
  done
  echo "security-svc did not start (see $WORK/security-svc.log)" >&2
  exit 1
}

user_svc() { # BIN DB_URL ARGS...
  local bin=$1 db=$2
  shift 2
  DATABASE_URL=$db USER_SVC__SECURITY__URL="http://127.0.0.1:$PORT" \
    USER_SVC__SECURITY__TOKEN=$USER_SVC_TOKEN USER_SVC__LOG__FILTER=warn "$bin" "$@"
}

# The template: both services' tables, the keys, the manager and COUNT legacy rows.
sql "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)"
sql "CREATE DATABASE $TEMPLATE"
template=$(url_of "$TEMPLATE")
DATABASE_URL=$template SECURITY_SVC__LOG__FILTER=warn "$SECURITY_BIN" operator init \
  --shares 1 --threshold 1 --root-key-file "$WORK/root.key" >/dev/null
run_security "$template"
for key in vottery-users-pii:aes256-gcm96:context_keys vottery-users-index:hmac \
  vottery-users-records:ed25519; do
  IFS=: read -r name type flag <<<"$key"
  curl -fs -o /dev/null -H "X-Vault-Token: $ADMIN_TOKEN" -X POST \
    "http://127.0.0.1:$PORT/v1/transit/keys/$name" -d "{\"type\":\"$type\"${flag:+,\"$flag\":true}}"
done
user_svc "$AFTER" "$template" migrate >/dev/null
user_svc "$AFTER" "$template" bootstrap-manager --email bench-manager@example.com \
  --phone +15550000001 >/dev/null
legacy_users "$template" "$COUNT"
stop_security

# run_once LABEL BIN — rows/s of BIN on a fresh copy of the template.
run_once() {
  local label=$1 bin=$2 db=vottery_bench_encrypt_run
  sql "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  sql "CREATE DATABASE $db TEMPLATE $TEMPLATE"
  run_security "$(url_of "$db")"
  local started ended
  started=$(date +%s.%N)
  user_svc "$bin" "$(url_of "$db")" encrypt-existing --batch-size "$BATCH" 2>"$WORK/$label.log" ||
    { tail -n 3 "$WORK/$label.log" >&2; stop_security; exit 1; }
  ended=$(date +%s.%N)
  stop_security
  [ "$(psql "$(url_of "$db")" -XAtc "SELECT count(*) FROM vottery_users WHERE NOT pii_encrypted")" = 0 ] ||
    { echo "$label left plaintext rows" >&2; exit 1; }
  awk -v n="$COUNT" -v s="$started" -v e="$ended" 'BEGIN {printf "%.0f\n", n / (e - s)}'
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

before_rates=() after_rates=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for which in $order; do
    if [ "$which" = before ]; then
      rate=$(run_once "before-$round" "$BEFORE"); before_rates+=("$rate")
    else
      rate=$(run_once "after-$round" "$AFTER"); after_rates+=("$rate")
    fi
    echo "round $round $which: $rate rows/s"
  done
done
sql "DROP DATABASE IF EXISTS vottery_bench_encrypt_run WITH (FORCE)"
sql "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)"
echo "encrypt-existing, $COUNT rows, --batch-size $BATCH, median of $ROUNDS:" \
  "before $(printf '%s\n' "${before_rates[@]}" | median) rows/s," \
  "after $(printf '%s\n' "${after_rates[@]}" | median) rows/s"
