# shellcheck shell=bash
# Running the two services natively, shared by scripts/dev.sh and anything else that starts the
# stack on this machine. Needs scripts/lib/provision.sh sourced first (log, die, DATA_DIR).
#
# The services' settings come from deploy/env/*.env, the files docker-compose.yml reads with
# env_file:, so both stacks run the same configuration; only addresses differ.

STACK_PIDS=()

# load_env_file FILE — exports its KEY=value lines literally (no quotes, no expansion, as
# Compose reads an env_file); a variable already set in the environment wins.
load_env_file() {
  local file=$1 line key
  [ -f "$file" ] || die "missing $file"
  while IFS= read -r line || [ -n "$line" ]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "$file: not a KEY=value line: $line"
    key=${line%%=*}
    [ -n "${!key+set}" ] || export "$key=${line#*=}"
  done <"$file"
}

# port_in_use PORT — true when something listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# database_url ADMIN_URL NAME — the URL of database NAME on the same server.
database_url() {
  local url=${1%%\?*} name=$2
  local rest=${url#*://}
  case $rest in */*) url=${url%/*} ;; esac
  echo "$url/$name"
}

# ensure_database ADMIN_URL NAME — creates the database when it does not exist.
ensure_database() {
  local admin=$1 name=$2
  if [ "$(psql "$admin" -XAtqc "select 1 from pg_database where datname = '$name'")" != 1 ]; then
    log "creating database $name"
    psql "$admin" -Xqc "create database $name" >/dev/null || die "cannot create database $name"
  fi
}

# drop_database ADMIN_URL NAME
drop_database() {
  log "dropping database $2"
  psql "$1" -Xqc "drop database if exists $2 with (force)" >/dev/null || die "cannot drop database $2"
}

# security_svc ARGS... / user_svc ARGS... — the binaries, with the exported settings
# (STACK_EXEC=exec makes them replace the calling subshell, see start_background).
security_svc() { ${STACK_EXEC:-} "${SECURITY_SVC_BIN:?}" "$@"; }
user_svc() { ${STACK_EXEC:-} "${USER_SVC_BIN:?}" "$@"; }

# start_background NAME LOG COMMAND... — starts COMMAND with its output in LOG; the pid is
# appended to STACK_PIDS and left in STARTED_PID (the command's own pid: it replaces the
# subshell). File descriptor 9, the stack lock, is not passed on.
start_background() {
  local name=$1 logfile=$2
  shift 2
  log "starting $name (log: ${logfile#"$ROOT_DIR"/})"
  (
    STACK_EXEC=exec
    if declare -F "$1" >/dev/null; then "$@"; else exec "$@"; fi
  ) >>"$logfile" 2>&1 9>&- &
  STARTED_PID=$!
  STACK_PIDS+=("$STARTED_PID")
}

# wait_http URL PID NAME LOG [SECONDS] — waits for a 2xx from URL while PID lives.
wait_http() {
  local url=$1 pid=$2 name=$3 logfile=$4 seconds=${5:-120}
  local tries=$((seconds * 5))
  for _ in $(seq 1 "$tries"); do
    curl -fs -o /dev/null --max-time 2 "$url" && return 0
    kill -0 "$pid" 2>/dev/null || {
      tail -n 20 "$logfile" >&2 || true
      die "$name exited before answering $url; see $logfile"
    }
    sleep 0.2
  done
  tail -n 20 "$logfile" >&2 || true
  die "$name did not answer $url within ${seconds}s; see $logfile"
}

# stop_stack — stops every process in STACK_PIDS, newest first: TERM, then KILL after 10 s.
stop_stack() {
  local index pid
  for ((index = ${#STACK_PIDS[@]} - 1; index >= 0; index--)); do
    pid=${STACK_PIDS[index]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${STACK_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${STACK_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  STACK_PIDS=()
}

# security_init_once KEY_FILE INIT_FILE — initialises security-svc unless KEY_FILE exists:
# the shares and root token go to INIT_FILE, the root key (dev auto-unseal) to KEY_FILE.
security_init_once() {
  local key=$1 init=$2 output
  [ -s "$key" ] && return 0
  log "initialising security-svc (shares: ${init#"$ROOT_DIR"/}, root key: ${key#"$ROOT_DIR"/})"
  rm -f "$key"
  if ! output=$(umask 077 && security_svc operator init --shares 3 --threshold 2 --root-key-file "$key"); then
    die "security-svc operator init failed; if this database was initialised before its root key was lost, start clean with scripts/dev.sh --reset"
  fi
  (umask 077 && printf '%s\n' "$output" >"$init")
  chmod 600 "$key" "$init"
}

# bootstrap_manager_once ID_FILE EMAIL PHONE DATABASE_URL LOG — prints the manager's user id,
# creating the first manager when ID_FILE does not name one yet (diagnostics go to LOG).
bootstrap_manager_once() {
  local id_file=$1 email=$2 phone=$3 db=$4 logfile=$5 output id=""
  if [ -s "$id_file" ]; then
    cat "$id_file"
    return 0
  fi
  if output=$(user_svc bootstrap-manager --email "$email" --phone "$phone" 2>>"$logfile"); then
    id=$(printf '%s\n' "$output" | sed -n 's/^  "id": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
    log "created the bootstrap manager, user $id"
  fi
  if [ -z "$id" ]; then
    # A manager exists already (created before the id file): use the first one.
    id=$(psql "$db" -XAtqc "select id from vottery_users where admin_role = 'manager' order by id limit 1")
  fi
  [ -n "$id" ] || die "no manager could be created or found"
  echo "$id" >"$id_file"
  echo "$id"
}

# write_dev_env FILE USER_URL SECURITY_URL MANAGER_ID MANAGER_JWT DATABASE_URL NATS_URL — the
# variables the README's and docs' examples use (.data/dev.env), readable by its owner only;
# the tokens come from the exported service settings.
write_dev_env() {
  (
    umask 077
    cat >"$1" <<EOF
USER_SVC_URL=$2
SECURITY_SVC_URL=$3
SECURITY_SVC_ADMIN_TOKEN=$SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET
SECURITY_SVC_TRUSTEE_TOKEN=$SECURITY_SVC__AUTH__TOKENS__TRUSTEE__SECRET
USER_SVC_SERVICE_TOKEN=$USER_SVC__AUTH__SERVICE_TOKENS__AUTH_SERVICE__SECRET
DEV_MANAGER_ID=$4
DEV_MANAGER_JWT=$5
DEV_JWT_SECRET=$USER_SVC__AUTH__JWT_SECRET
DATABASE_URL=$6
NATS_URL=$7
EOF
  )
}
