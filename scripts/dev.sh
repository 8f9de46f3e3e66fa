#!/usr/bin/env bash
# The whole local stack in one command: PostgreSQL, security-svc (initialised once, unsealed
# from a development root key, user-svc's transit keys bootstrapped) and user-svc, with a
# bootstrap manager and a JWT for them; --gateway adds nginx in front of user-svc.
#
#   scripts/dev.sh             start (or restart on the kept data); Ctrl-C stops it
#   scripts/dev.sh --gateway   also the API gateway on GATEWAY_PORT (default 8000)
#   scripts/dev.sh --reset     wipe .data/dev and the vottery_dev database first
#
# Debug builds of both binaries. Settings come from deploy/env/*.env (shared with
# deploy/docker-compose.yml); this script sets only addresses. Ports: SECURITY_SVC_PORT,
# USER_SVC_PORT, GATEWAY_PORT. Data: .data/dev/ (init shares and root key, chmod 600, dev only),
# logs in .data/dev/logs/, connection details in .data/dev.env.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh
# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

RESET=0 GATEWAY=0
for arg in "$@"; do
  case $arg in
    --reset) RESET=1 ;;
    --gateway) GATEWAY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

DEV_DIR="$DATA_DIR/dev"
LOG_DIR="$DEV_DIR/logs"
DEV_ENV="$DATA_DIR/dev.env"
DEV_DB=vottery_dev
ROOT_KEY="$DEV_DIR/root.key"
INIT_JSON="$DEV_DIR/init.json"
MANAGER_ID_FILE="$DEV_DIR/manager-id"
MANAGER_EMAIL=${DEV_MANAGER_EMAIL:-manager@example.com}
MANAGER_PHONE=${DEV_MANAGER_PHONE:-+15550000001}

# One stack at a time: a lock held for the script's life, then the ports.
mkdir -p "$DATA_DIR"
command -v flock >/dev/null 2>&1 || apt_install util-linux
exec 9>"$DATA_DIR/dev.lock"
if ! flock -n 9; then
  die "scripts/dev.sh is already running (pid $(cat "$DATA_DIR/dev.pid" 2>/dev/null || echo '?')); stop it with Ctrl-C first"
fi
echo $$ >"$DATA_DIR/dev.pid"

# Ctrl-C and TERM stop what this script started; PostgreSQL stays (scripts/test.sh shares it).
STOPPING=0
shutdown() {
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  if [ "${#STACK_PIDS[@]}" -gt 0 ]; then
    log "stopping the stack"
    stop_stack
    log "stopped; PostgreSQL is left running and the data kept in ${DEV_DIR#"$ROOT_DIR"/}"
  fi
  rm -f "$DATA_DIR/dev.pid"
}
trap shutdown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_env_file deploy/env/security-svc.env
load_env_file deploy/env/user-svc.env
SECURITY_SVC_PORT=${SECURITY_SVC_PORT:-$SECURITY_SVC__APPLICATION__PORT}
USER_SVC_PORT=${USER_SVC_PORT:-$USER_SVC__APPLICATION__PORT}
GATEWAY_PORT=${GATEWAY_PORT:-8000}
ports=("$SECURITY_SVC_PORT" "$USER_SVC_PORT")
[ "$GATEWAY" = 1 ] && ports+=("$GATEWAY_PORT")
for port in "${ports[@]}"; do
  port_in_use "$port" && die "port $port is already in use (a stack started some other way?); free it or choose ports with SECURITY_SVC_PORT, USER_SVC_PORT, GATEWAY_PORT"
done

command -v curl >/dev/null 2>&1 || apt_install curl
ensure_postgres
ensure_nats
ADMIN_DATABASE_URL=$DATABASE_URL
DEV_DATABASE_URL=$(database_url "$ADMIN_DATABASE_URL" "$DEV_DB")

if [ "$RESET" = 1 ]; then
  log "resetting: removing ${DEV_DIR#"$ROOT_DIR"/} and the $DEV_DB database"
  rm -rf "$DEV_DIR" "$DEV_ENV"
  drop_database "$ADMIN_DATABASE_URL" "$DEV_DB"
fi
mkdir -p "$DEV_DIR" "$LOG_DIR"
chmod 700 "$DEV_DIR"
ensure_database "$ADMIN_DATABASE_URL" "$DEV_DB"

log "building security-svc and user-svc (debug)"
cargo build --locked -p security-svc -p user-svc --bins
SECURITY_SVC_BIN="$ROOT_DIR/target/debug/security-svc"
USER_SVC_BIN="$ROOT_DIR/target/debug/user-svc"

# Addresses: everything else comes from deploy/env/*.env.
SECURITY_URL="http://127.0.0.1:$SECURITY_SVC_PORT"
USER_URL="http://127.0.0.1:$USER_SVC_PORT"
export SECURITY_SVC__APPLICATION__HOST=127.0.0.1
export SECURITY_SVC__APPLICATION__PORT=$SECURITY_SVC_PORT
export SECURITY_SVC__DATABASE__URL=$DEV_DATABASE_URL
export SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE=$ROOT_KEY
export USER_SVC__APPLICATION__HOST=127.0.0.1
export USER_SVC__APPLICATION__PORT=$USER_SVC_PORT
export USER_SVC__APPLICATION__TRUSTED_PROXIES=127.0.0.1/32,::1/128
export USER_SVC__DATABASE__URL=$DEV_DATABASE_URL
export USER_SVC__SECURITY__URL=$SECURITY_URL
export USER_SVC__EVENTS__NATS_URL=$NATS_URL

log "migrating"
security_svc migrate >>"$LOG_DIR/security-svc.log" 2>&1 || die "security-svc migrate failed; see $LOG_DIR/security-svc.log"
user_svc migrate >>"$LOG_DIR/user-svc.log" 2>&1 || die "user-svc migrate failed; see $LOG_DIR/user-svc.log"

security_init_once "$ROOT_KEY" "$INIT_JSON"

start_background security-svc "$LOG_DIR/security-svc.log" security_svc serve
SECURITY_PID=$STARTED_PID
wait_http "$SECURITY_URL/health/ready" "$SECURITY_PID" security-svc "$LOG_DIR/security-svc.log"

MANAGER_ID=$(bootstrap_manager_once "$MANAGER_ID_FILE" "$MANAGER_EMAIL" "$MANAGER_PHONE" "$DEV_DATABASE_URL" "$LOG_DIR/user-svc.log")
MANAGER_JWT=$(user_svc issue-dev-token "$MANAGER_ID" --ttl 86400 2>>"$LOG_DIR/user-svc.log") || die "issue-dev-token failed"

start_background user-svc "$LOG_DIR/user-svc.log" user_svc serve
USER_PID=$STARTED_PID
wait_http "$USER_URL/health/ready" "$USER_PID" user-svc "$LOG_DIR/user-svc.log"

GATEWAY_URL=""
if [ "$GATEWAY" = 1 ]; then
  ensure_nginx
  GATEWAY_DIR="$DEV_DIR/gateway"
  deploy/gateway/render.sh "$GATEWAY_DIR" "127.0.0.1:$USER_SVC_PORT" "$GATEWAY_PORT"
  start_background gateway "$LOG_DIR/gateway.log" \
    "$NGINX_BIN" -p "$GATEWAY_DIR/" -c "$GATEWAY_DIR/nginx.conf" -g 'daemon off;'
  GATEWAY_PID=$STARTED_PID
  GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
  wait_http "$GATEWAY_URL/healthz" "$GATEWAY_PID" gateway "$LOG_DIR/gateway.log" 30
fi

write_dev_env "$DEV_ENV" "$USER_URL" "$SECURITY_URL" "$MANAGER_ID" "$MANAGER_JWT" "$DEV_DATABASE_URL" "$NATS_URL"
[ -z "$GATEWAY_URL" ] || echo "GATEWAY_URL=$GATEWAY_URL" >>"$DEV_ENV"

API_URL_VAR=USER_SVC_URL
[ -n "$GATEWAY_URL" ] && API_URL_VAR=GATEWAY_URL
cat <<EOF

The Vottery stack is up. Ctrl-C stops it.

  user-svc      $USER_URL   (API docs: $USER_URL/docs/)
  security-svc  $SECURITY_URL   (sealed behind ${INIT_JSON#"$ROOT_DIR"/}; auto-unsealed from ${ROOT_KEY#"$ROOT_DIR"/})
EOF
[ -n "$GATEWAY_URL" ] && echo "  gateway       $GATEWAY_URL   (public routes: /api/users, /api/roles)"
cat <<EOF
  database      $DEV_DATABASE_URL
  logs          ${LOG_DIR#"$ROOT_DIR"/}/*.log
  settings      ${DEV_ENV#"$ROOT_DIR"/}

Manager user $MANAGER_ID, JWT valid for 24 h:
  $MANAGER_JWT

Try it:
  set -a; . .data/dev.env; set +a
  curl -s "\$$API_URL_VAR/api/users/me" -H "Authorization: Bearer \$DEV_MANAGER_JWT"
  curl -s "\$$API_URL_VAR/api/roles" -H "Authorization: Bearer \$DEV_MANAGER_JWT"
  curl -s -X POST "\$$API_URL_VAR/api/users" -H "Authorization: Bearer \$USER_SVC_SERVICE_TOKEN" -H 'Content-Type: application/json' -d "{\\"sngine_email\\":\\"voter-\$(date +%s)@example.com\\",\\"sngine_phone\\":\\"+44\$(date +%s)\\",\\"user_type\\":\\"voter\\"}"
  curl -s -X POST "\$SECURITY_SVC_URL/v1/transit/encrypt/vottery-users-pii" -H "X-Vault-Token: \$SECURITY_SVC_ADMIN_TOKEN" -d '{"plaintext":"aGVsbG8=","context":"ZGVtbw=="}'
  curl -s -X POST "\$SECURITY_SVC_URL/v1/guardians/dev-guardian" -H "X-Vault-Token: \$SECURITY_SVC_TRUSTEE_TOKEN" -H 'Content-Type: application/json' -d '{"ceremony_id":"dev","sequence_order":1,"number_of_guardians":1,"quorum":1}'

User-change events: GET \$USER_SVC_URL/api/events with \$USER_SVC_SERVICE_TOKEN, or stream
VOTTERY_USERS on \$NATS_URL (docs/events.md). A three-guardian ceremony and a tally: README.md,
"Guardians".

EOF

# Until Ctrl-C, or until a service stops by itself.
while true; do
  for pid in "${STACK_PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "a service stopped unexpectedly (pid $pid); see ${LOG_DIR#"$ROOT_DIR"/}/*.log"
    fi
  done
  sleep 1 &
  wait $! || true
done
