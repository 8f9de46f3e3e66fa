#!/usr/bin/env bash
# Fault runs: the stack on loopback under a concurrent write and read load, one fault at a time:
#   security-svc-kill     security-svc SIGKILLed, restarted and unsealed
#   security-svc-seal     security-svc sealed through /v1/sys/seal, unsealed with two shares
#   key-rotation          the PII and record-signing keys rotated through transit
#   postgres-terminate    every user-svc connection ended with pg_terminate_backend, three times
#   user-svc-kill         user-svc SIGKILLed and restarted
# After each, an audit (scripts/faults/audit.py): every acknowledged write is a row; every row is
# encrypted, signed, audited and reads back valid; the only non-2xx answers are 503 with
# Retry-After (or no answer while user-svc is down); keyed retries are answered once. One line
# per fault; exits non-zero on any violation. Uses a database of its own, dropped afterwards.
#
# Usage: scripts/faults.sh [FAULT...]   (default: all, in the order above)
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh
# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh

ALL_FAULTS=(security-svc-kill security-svc-seal key-rotation postgres-terminate user-svc-kill)
FAULTS=("$@")
[ ${#FAULTS[@]} -gt 0 ] || FAULTS=("${ALL_FAULTS[@]}")
LOAD_SECONDS=${FAULT_LOAD_SECONDS:-8}

command -v curl >/dev/null 2>&1 || apt_install curl
command -v python3 >/dev/null 2>&1 || apt_install python3
ensure_postgres
ADMIN_DATABASE_URL=$DATABASE_URL
FAULTS_DB=vottery_faults_$$
FAULTS_DATABASE_URL=$(database_url "$ADMIN_DATABASE_URL" "$FAULTS_DB")
RUN_DIR="$DATA_DIR/faults"
LOG_DIR="$RUN_DIR/logs"
rm -rf "$RUN_DIR"
mkdir -p "$LOG_DIR"
chmod 700 "$RUN_DIR"

cleanup() {
  stop_stack
  drop_database "$ADMIN_DATABASE_URL" "$FAULTS_DB" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

log "building security-svc and user-svc (debug)"
cargo build --locked -p security-svc -p user-svc --bins
SECURITY_SVC_BIN="$ROOT_DIR/target/debug/security-svc"
USER_SVC_BIN="$ROOT_DIR/target/debug/user-svc"

load_env_file deploy/env/security-svc.env
load_env_file deploy/env/user-svc.env
SECURITY_PORT=$(free_port)
USER_PORT=$(free_port)
SECURITY_URL="http://127.0.0.1:$SECURITY_PORT"
USER_URL="http://127.0.0.1:$USER_PORT"
ADMIN_TOKEN=$SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET
SERVICE_TOKEN=$USER_SVC__AUTH__SERVICE_TOKENS__AUTH_SERVICE__SECRET
export SECURITY_SVC__APPLICATION__HOST=127.0.0.1
export SECURITY_SVC__APPLICATION__PORT=$SECURITY_PORT
export SECURITY_SVC__DATABASE__URL="$FAULTS_DATABASE_URL?application_name=security-svc"
export SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE="$RUN_DIR/root.key"
export SECURITY_SVC__LOG__FILTER=warn
export USER_SVC__APPLICATION__HOST=127.0.0.1
export USER_SVC__APPLICATION__PORT=$USER_PORT
# The application name lets the postgres-terminate fault end user-svc's sessions alone.
export USER_SVC__DATABASE__URL="$FAULTS_DATABASE_URL?application_name=user-svc"
export USER_SVC__SECURITY__URL=$SECURITY_URL
export USER_SVC__RATE_LIMIT__ENABLED=false
export USER_SVC__LOG__FILTER=warn
unset USER_SVC__EVENTS__NATS_URL

ensure_database "$ADMIN_DATABASE_URL" "$FAULTS_DB"
security_svc migrate >>"$LOG_DIR/security-svc.log" 2>&1 || die "security-svc migrate failed; see $LOG_DIR/security-svc.log"
user_svc migrate >>"$LOG_DIR/user-svc.log" 2>&1 || die "user-svc migrate failed; see $LOG_DIR/user-svc.log"
security_init_once "$RUN_DIR/root.key" "$RUN_DIR/init.json"

start_security() {
  start_background security-svc "$LOG_DIR/security-svc.log" security_svc serve
  SECURITY_PID=$STARTED_PID
  wait_http "$SECURITY_URL/health/live" "$SECURITY_PID" security-svc "$LOG_DIR/security-svc.log" 60
  unseal_security
  wait_http "$SECURITY_URL/health/ready" "$SECURITY_PID" security-svc "$LOG_DIR/security-svc.log" 60
}

start_user() {
  start_background user-svc "$LOG_DIR/user-svc.log" user_svc serve
  USER_PID=$STARTED_PID
  wait_http "$USER_URL/health/ready" "$USER_PID" user-svc "$LOG_DIR/user-svc.log" 60
}

# unseal_security — submits shares from init.json until security-svc reports it is unsealed.
unseal_security() {
  local share
  for share in $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["keys_base64"]))' "$RUN_DIR/init.json"); do
    curl -fs --max-time 5 "$SECURITY_URL/v1/sys/seal-status" | grep -q '"sealed":false' && return 0
    curl -fs --max-time 5 -X PUT -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"key\":\"$share\"}" "$SECURITY_URL/v1/sys/unseal" || true
  done
  curl -fs --max-time 5 "$SECURITY_URL/v1/sys/seal-status" | grep -q '"sealed":false' || die "security-svc did not unseal"
}

start_security
MANAGER_ID=$(bootstrap_manager_once "$RUN_DIR/manager-id" manager@faults.example.com +14150000001 "$FAULTS_DATABASE_URL" "$LOG_DIR/user-svc.log")
MANAGER_JWT=$(user_svc issue-dev-token "$MANAGER_ID" --ttl 3600 2>>"$LOG_DIR/user-svc.log") || die "issue-dev-token failed"
start_user

# A keyed write sent twice answers once, replayed the second time, when the service supports
# Idempotency-Key; until then a retried write may be answered 409 and is only counted.
idempotency_probe() {
  local body replayed
  body='{"sngine_email":"probe@faults.example.com","sngine_phone":"+14150000002"}'
  for _ in 1 2; do
    replayed=$(curl -s -o /dev/null -D - --max-time 10 -X POST "$USER_URL/api/users" \
      -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' \
      -H 'Idempotency-Key: faults-probe' -d "$body" | tr -d '\r' | grep -i '^idempotent-replayed: true' || true)
  done
  [ -n "$replayed" ]
}
STRICT=()
if idempotency_probe; then
  STRICT=(--strict-idempotency)
  log "user-svc replays keyed writes: retries answered 409 are violations"
else
  log "user-svc does not replay keyed writes yet: retries answered 409 are counted, not failed"
fi

inject() {
  case $1 in
    security-svc-kill)
      kill -KILL "$SECURITY_PID"
      wait "$SECURITY_PID" 2>/dev/null || true
      sleep 1
      start_security
      ;;
    security-svc-seal)
      curl -fs --max-time 5 -X PUT -o /dev/null -H "X-Vault-Token: $ADMIN_TOKEN" "$SECURITY_URL/v1/sys/seal" \
        || die "sealing failed"
      sleep 1.5
      unseal_security
      ;;
    key-rotation)
      local key
      for key in vottery-users-pii vottery-users-records; do
        curl -fs --max-time 10 -X POST -o /dev/null -H "X-Vault-Token: $ADMIN_TOKEN" \
          "$SECURITY_URL/v1/transit/keys/$key/rotate" || die "rotating $key failed"
      done
      ;;
    postgres-terminate)
      local round
      for round in 1 2 3; do
        psql "$ADMIN_DATABASE_URL" -XAtqc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$FAULTS_DB' AND application_name = 'user-svc'" >/dev/null
        sleep 1
      done
      ;;
    user-svc-kill)
      kill -KILL "$USER_PID"
      wait "$USER_PID" 2>/dev/null || true
      sleep 1
      start_user
      ;;
    *) die "unknown fault: $1 (known: ${ALL_FAULTS[*]})" ;;
  esac
}

FAILED=0
BLOCK=100
for fault in "${FAULTS[@]}"; do
  BLOCK=$((BLOCK + 1))
  after_id=$(psql "$FAULTS_DATABASE_URL" -XAtqc 'SELECT coalesce(max(id), 0) FROM vottery_users')
  tally="$RUN_DIR/$fault.json"
  python3 scripts/faults/load.py --port "$USER_PORT" --service-token "$SERVICE_TOKEN" \
    --manager-token "$MANAGER_JWT" --manager-id "$MANAGER_ID" --seconds "$LOAD_SECONDS" \
    --phone-block "$BLOCK" --run "$fault-$$" >"$tally" &
  load_pid=$!
  sleep 1.5
  inject "$fault"
  wait "$load_pid" || die "the load for $fault failed"
  down=()
  [ "$fault" = user-svc-kill ] && down=(--down-allowed)
  python3 scripts/faults/audit.py --fault "$fault" --tally "$tally" --db-url "$FAULTS_DATABASE_URL" \
    --port "$USER_PORT" --manager-token "$MANAGER_JWT" --after-id "$after_id" \
    "${down[@]}" "${STRICT[@]}" || FAILED=1
done

if [ "$FAILED" = 1 ]; then
  die "fault runs found violations (logs: ${LOG_DIR#"$ROOT_DIR"/})"
fi
log "fault runs passed"
