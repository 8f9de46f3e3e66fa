#!/usr/bin/env bash
# Runs the shell examples of the docs as written: every ```sh block of README.md and docs/*.md
# (or of the files named), in order, in one `bash -euo pipefail` per file, against a stack of
# that file's own, started as scripts/dev.sh starts one: security-svc (initialised, unsealed
# from its root key) and user-svc from EXAMPLES_BIN_DIR (default target/debug), a private NATS
# server with JetStream, a database of its own, free ports. Each file's bash runs in a scratch
# directory whose .data/dev.env is that stack's, with its variables exported, the services'
# settings exported too (so `user-svc …` commands reach that stack) and the binaries on PATH.
#
# A block fails when a command in it fails, when it runs longer than EXAMPLES_BLOCK_TIMEOUT
# seconds (default 60), or when a curl in it gets a 5xx answer; the block, its output and the
# HTTP statuses are printed, the other files still run, and the script exits 1. A block preceded
# by `<!-- example: not run (REASON) -->` is not run but counted and listed with REASON; so
# are the blocks from a `<!-- walkthrough: NAME -->` marker to the next heading, which
# scripts/NAME/walkthrough.sh runs. One line per file; EXAMPLES_VERBOSE=1 adds each block's
# HTTP statuses, EXAMPLES_KEEP=1 keeps every block's output in the scratch directory it names.
# Everything started is stopped, and the database dropped, on exit.
#
#   scripts/docs/examples.sh                  README.md and docs/*.md
#   scripts/docs/examples.sh docs/api.md      the files named
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=../lib/provision.sh
. scripts/lib/provision.sh
# shellcheck source=../lib/stack.sh
. scripts/lib/stack.sh

BIN_DIR=${EXAMPLES_BIN_DIR:-$ROOT_DIR/target/debug}
BLOCK_TIMEOUT=${EXAMPLES_BLOCK_TIMEOUT:-60}
VERBOSE=${EXAMPLES_VERBOSE:-0}
SECURITY_SVC_BIN="$BIN_DIR/security-svc"
USER_SVC_BIN="$BIN_DIR/user-svc"
for bin in "$SECURITY_SVC_BIN" "$USER_SVC_BIN"; do
  [ -x "$bin" ] || die "no $bin: build it first (cargo build -p security-svc -p user-svc --bins)"
done

if [ "$#" -gt 0 ]; then FILES=("$@"); else FILES=(README.md docs/*.md); fi
for file in "${FILES[@]}"; do [ -f "$file" ] || die "no such file: $file"; done

command -v curl >/dev/null 2>&1 || apt_install curl
command -v jq >/dev/null 2>&1 || apt_install jq
command -v setsid >/dev/null 2>&1 || apt_install util-linux
command -v nats-server >/dev/null 2>&1 || apt_install nats-server
ensure_postgres
load_env_file deploy/env/security-svc.env
load_env_file deploy/env/user-svc.env
ADMIN_DATABASE_URL=$DATABASE_URL
EXAMPLES_DB="vottery_docs_examples_$$"
EXAMPLES_DATABASE_URL=$(database_url "$ADMIN_DATABASE_URL" "$EXAMPLES_DB")
SCRATCH=$(mktemp -d)
DB_CREATED=0
STACK_LOG=""
exec 3>&2
USED_PORTS=" "
FAILED_FILES=()
SKIPPED=()
TOTAL_RAN=0

# finish — stops the stack, drops the database and removes the scratch directory.
finish() {
  local rc=$?
  if [ -n "$STACK_LOG" ] && [ "$rc" != 0 ]; then
    printf 'the examples stack did not start:\n' >&3
    tail -n 30 "$STACK_LOG" "${STACK_LOG%/*}"/stack/logs/*.log >&3 2>/dev/null || true
  fi
  stop_stack
  if [ "$DB_CREATED" = 1 ]; then
    psql "$ADMIN_DATABASE_URL" -Xqc "drop database if exists $EXAMPLES_DB with (force)" >/dev/null 2>&1 || true
  fi
  if [ "${EXAMPLES_KEEP:-0}" = 1 ]; then
    printf 'kept: %s (each block: its text, output and HTTP statuses)\n' "$SCRATCH" >&3
  else
    rm -rf "$SCRATCH"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port — sets FREE_PORT to a port in 20000–31999 that nothing listens on and this run has
# not handed out already (below Linux's ephemeral range, so no outgoing connection takes it).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    case $USED_PORTS in *" $port "*) continue ;; esac
    port_in_use "$port" || break
  done
  USED_PORTS+="$port "
  FREE_PORT=$port
}

# wait_nats URL PID LOG — waits for the NATS server at URL to greet while PID lives.
wait_nats() {
  local url=$1 pid=$2 logfile=$3
  # shellcheck disable=SC2016 # expanded by the bash that runs it, as in ensure_nats
  local answers='u=${0#nats://}; exec 3<>"/dev/tcp/${u%:*}/${u##*:}" && head -c 4 <&3 | grep -q INFO'
  for _ in $(seq 1 100); do
    timeout 2 bash -c "$answers" "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logfile" >&2 || true; die "nats-server exited; see $logfile"; }
    sleep 0.1
  done
  die "nats-server did not answer $url; see $logfile"
}

# start_examples_stack DIR — a fresh database, NATS, security-svc and user-svc, as scripts/dev.sh
# starts them; DIR/work/.data/dev.env gets the variables scripts/dev.sh writes.
start_examples_stack() {
  local dir=$1 logs=$1/logs security_port user_port nats_port manager_id manager_jwt
  mkdir -p "$logs" "$dir/nats" "$dir/work/.data"
  (umask 077 && mkdir -p "$dir/seal")
  psql "$ADMIN_DATABASE_URL" -Xqc "drop database if exists $EXAMPLES_DB with (force)" >/dev/null
  DB_CREATED=1
  psql "$ADMIN_DATABASE_URL" -Xqc "create database $EXAMPLES_DB" >/dev/null || die "cannot create database $EXAMPLES_DB"
  free_port; security_port=$FREE_PORT
  free_port; user_port=$FREE_PORT
  free_port; nats_port=$FREE_PORT

  start_background nats "$logs/nats.log" nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/nats"
  wait_nats "nats://127.0.0.1:$nats_port" "$STARTED_PID" "$logs/nats.log"

  export SECURITY_SVC__APPLICATION__HOST=127.0.0.1
  export SECURITY_SVC__APPLICATION__PORT=$security_port
  export SECURITY_SVC__DATABASE__URL=$EXAMPLES_DATABASE_URL
  export SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE=$dir/seal/root.key
  export USER_SVC__APPLICATION__HOST=127.0.0.1
  export USER_SVC__APPLICATION__PORT=$user_port
  export USER_SVC__APPLICATION__TRUSTED_PROXIES=127.0.0.1/32,::1/128
  export USER_SVC__DATABASE__URL=$EXAMPLES_DATABASE_URL
  export USER_SVC__SECURITY__URL=http://127.0.0.1:$security_port
  export USER_SVC__EVENTS__NATS_URL=nats://127.0.0.1:$nats_port

  security_svc migrate >>"$logs/security-svc.log" 2>&1 || die "security-svc migrate failed; see $logs/security-svc.log"
  user_svc migrate >>"$logs/user-svc.log" 2>&1 || die "user-svc migrate failed; see $logs/user-svc.log"
  security_init_once "$dir/seal/root.key" "$dir/seal/init.json"
  start_background security-svc "$logs/security-svc.log" security_svc serve
  wait_http "http://127.0.0.1:$security_port/health/ready" "$STARTED_PID" security-svc "$logs/security-svc.log"
  manager_id=$(bootstrap_manager_once "$dir/seal/manager-id" manager@example.com +15550000001 \
    "$EXAMPLES_DATABASE_URL" "$logs/user-svc.log")
  manager_jwt=$(user_svc issue-dev-token "$manager_id" --ttl 3600 2>>"$logs/user-svc.log") || die "issue-dev-token failed"
  start_background user-svc "$logs/user-svc.log" user_svc serve
  wait_http "http://127.0.0.1:$user_port/health/ready" "$STARTED_PID" user-svc "$logs/user-svc.log"

  write_dev_env "$dir/work/.data/dev.env" "http://127.0.0.1:$user_port" \
    "http://127.0.0.1:$security_port" "$manager_id" "$manager_jwt" "$EXAMPLES_DATABASE_URL" \
    "nats://127.0.0.1:$nats_port"
}

# extract_blocks FILE DIR — writes each ```sh block of FILE to DIR/NNN.sh with its first line
# number in DIR/NNN.line, and the reason it is not run, if any, in DIR/NNN.skip.
extract_blocks() {
  awk -v dir="$2" '
    function note(ext, text) { print text > (block ext); close(block ext) }
    /^[ ]*```/ && !inside {
      inside = 1; sh = ($0 ~ /^[ ]*```sh[ ]*$/)
      if (sh) {
        block = sprintf("%s/%03d", dir, ++n)
        note(".line", NR)
        if (walkthrough != "") note(".skip", "the " walkthrough " walkthrough, run by scripts/" walkthrough "/walkthrough.sh")
        else if (reason != "") note(".skip", reason)
        printf "" > (block ".sh")
      }
      reason = ""; next
    }
    /^[ ]*```/ && inside { inside = 0; if (sh) close(block ".sh"); next }
    inside { if (sh) print > (block ".sh"); next }
    /<!-- example: not run \(.*\) -->/ {
      reason = $0; sub(/.*<!-- example: not run \(/, "", reason); sub(/\) -->.*/, "", reason); next
    }
    /<!-- walkthrough: [A-Za-z0-9_-]+ -->/ {
      walkthrough = $0; sub(/.*<!-- walkthrough: /, "", walkthrough); sub(/ -->.*/, "", walkthrough); next
    }
    /^#/ { walkthrough = "" }
    /^[ \t]*$/ || /<!-- \/walkthrough -->/ { next }
    { reason = "" }
  ' "$1"
}

# write_hooks FILE — the functions each file's bash sources: per-block output files, a watchdog
# bounding each block, and curl recording every HTTP status it gets (a 5xx fails the block).
write_hooks() {
  cat >"$1" <<'EOF'
# example_begin N — sends what follows to N.out and arms the block's watchdog.
__example_begin() {
  __example_block=$1
  printf '%s\n' "$1" >"$EXAMPLES_STATE/current"
  exec >"$EXAMPLES_STATE/$1.out" 2>&1 </dev/null
  : >"$EXAMPLES_STATE/$1.codes"
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$EXAMPLES_BLOCK_TIMEOUT" &
    sleeper=$!
    wait "$sleeper"
    printf 'timed out after %ss\n' "$EXAMPLES_BLOCK_TIMEOUT" >"$EXAMPLES_STATE/$1.why"
    kill -TERM 0
  ) &
  __example_watchdog=$!
}
# example_end N — disarms the watchdog; a 5xx answer fails the block.
__example_end() {
  kill "$__example_watchdog" 2>/dev/null || true
  wait "$__example_watchdog" 2>/dev/null || true
  if grep -q '^5[0-9][0-9]$' "$EXAMPLES_STATE/$1.codes"; then
    printf 'curl got a 5xx answer\n' >"$EXAMPLES_STATE/$1.why"
    exit 1
  fi
  printf '%s\n' "$1" >>"$EXAMPLES_STATE/done"
}
# curl — the real curl, its status (and any message) appended to the block's N.codes.
curl() { command curl --write-out '%{stderr}%{http_code}\n' "$@" 2>>"$EXAMPLES_STATE/$__example_block.codes"; }
EOF
}

# run_file FILE — runs FILE's blocks against a fresh stack and prints its line.
run_file() {
  local file=$1 dir blocks state n ran=0 skipped=0 runnable=0 rc=0 pid failed why
  dir="$SCRATCH/$(printf '%s' "$file" | tr '/.' '__')"
  blocks="$dir/blocks" state="$dir/state"
  mkdir -p "$blocks" "$state"
  extract_blocks "$file" "$blocks"
  for n in "$blocks"/*.sh; do
    [ -e "$n" ] || continue
    n=${n%.sh}
    if [ -f "$n.skip" ]; then
      skipped=$((skipped + 1))
      SKIPPED+=("$file:$(cat "$n.line"): $(cat "$n.skip")")
    else
      runnable=$((runnable + 1))
    fi
  done
  if [ "$runnable" = 0 ]; then
    printf '%s: 0 blocks ran, %s not run\n' "$file" "$skipped"
    return 0
  fi

  STACK_LOG="$dir/stack.log"
  start_examples_stack "$dir/stack" 2>>"$STACK_LOG"
  STACK_LOG=""
  write_hooks "$state/hooks.sh"
  {
    # shellcheck disable=SC2016 # expanded by the file's bash
    printf '. "$EXAMPLES_STATE/hooks.sh"\nset -a; . "$EXAMPLES_DEV_ENV"; set +a\n'
    for n in "$blocks"/*.sh; do
      n=${n%.sh}
      [ -f "$n.skip" ] && continue
      printf '__example_begin %s\n' "${n##*/}"
      cat "$n.sh"
      printf '\n__example_end %s\n' "${n##*/}"
    done
  } >"$state/run.sh"

  (
    cd "$dir/stack/work"
    PATH="$BIN_DIR:$PATH" EXAMPLES_STATE=$state EXAMPLES_BLOCK_TIMEOUT=$BLOCK_TIMEOUT \
      EXAMPLES_DEV_ENV="$dir/stack/work/.data/dev.env" \
      exec setsid bash -euo pipefail "$state/run.sh" </dev/null >"$state/outside.out" 2>&1
  ) &
  pid=$!
  wait "$pid" || rc=$?
  kill -TERM -- "-$pid" 2>/dev/null || true
  stop_stack
  [ -f "$state/done" ] && ran=$(wc -l <"$state/done")
  TOTAL_RAN=$((TOTAL_RAN + ran))
  printf '%s: %s of %s blocks ran, %s not run\n' "$file" "$ran" "$runnable" "$skipped"

  if [ "$VERBOSE" = 1 ]; then
    for n in "$state"/*.codes; do
      [ -e "$n" ] || continue
      n=${n##*/} && n=${n%.codes}
      printf '  line %s: %s\n' "$(cat "$blocks/$n.line")" "$(grep -E '^[0-9]{3}$' "$state/$n.codes" | tr '\n' ' ')"
    done
  fi
  if [ "$rc" != 0 ]; then
    failed=$(cat "$state/current" 2>/dev/null || true)
    FAILED_FILES+=("$file")
    if [ -z "$failed" ]; then
      printf '%s: failed before its first block (status %s):\n' "$file" "$rc" >&2
      cat "$state/outside.out" >&2
      return 0
    fi
    why="exited with status $rc"
    [ -f "$state/$failed.why" ] && why=$(cat "$state/$failed.why")
    {
      printf '\n%s, block at line %s: %s\n--- block\n' "$file" "$(cat "$blocks/$failed.line")" "$why"
      cat "$blocks/$failed.sh"
      printf -- '--- output\n'
      cat "$state/$failed.out"
      printf -- '--- curl statuses and messages\n'
      cat "$state/$failed.codes"
      printf -- '---\n\n'
    } >&2
  fi
}

for file in "${FILES[@]}"; do
  run_file "$file"
done
printf '%s blocks ran; %s not run:\n' "$TOTAL_RAN" "${#SKIPPED[@]}"
for line in "${SKIPPED[@]}"; do printf '  %s\n' "$line"; done
if [ "${#FAILED_FILES[@]}" -gt 0 ]; then
  die "examples failed in: ${FAILED_FILES[*]}"
fi
