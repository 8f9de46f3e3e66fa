# shellcheck shell=bash
# The users benchmark with user-change events on: a NATS server with JetStream of the
# benchmark's own, each user-svc scenario measured against a baseline revision's user-svc
# (BENCH_BASELINE=<git rev>, alternating baseline and current runs, each build on a database it
# seeded itself) or against this build recording no events (BENCH_BASELINE=events-off), and
# the relay's throughput from a backlog into JetStream. Sourced by scripts/bench.sh, whose
# helpers (run_load, tracked, port_free, median, start_bench_users, users_database) it uses.

BENCH_NATS_PORT=${BENCH_NATS_PORT:-18422}
RELAY_EVENTS=${BENCH_RELAY_EVENTS:-20000}
BASELINE_BIN=""
BASELINE_REV=""
BASELINE_LABEL=""
# The settings the baseline user-svc runs with (besides USERS_ENV).
BASELINE_SETTINGS=()
USERS_ENV=()
# The PII key a baseline revision encrypts under.
BASELINE_PII_KEY=vottery-users-pii-shared
USERS_EXTRA=()

# users_env DB — the settings start_bench_users gives user-svc on DB, with USERS_EXTRA, into
# USERS_ENV (for the processes started again).
users_env() {
  USERS_ENV=(
    DATABASE_URL="$1"
    USER_SVC__APPLICATION__PORT="$USERS_PORT"
    USER_SVC__SECURITY__URL="http://127.0.0.1:$SECURITY_PORT"
    USER_SVC__SECURITY__TOKEN="$USER_SVC_TOKEN"
    USER_SVC__LOG__FILTER=warn
    "${USERS_EXTRA[@]}"
  )
}

# start_bench_nats — nats-server with JetStream on $BENCH_NATS_PORT, store under $BENCH_DIR,
# fresh each run; sets BENCH_NATS_URL.
start_bench_nats() {
  command -v nats-server >/dev/null 2>&1 || apt_install nats-server
  port_free "$BENCH_NATS_PORT"
  rm -rf "$BENCH_DIR/nats"
  mkdir -p "$BENCH_DIR/nats"
  nats-server -a 127.0.0.1 -p "$BENCH_NATS_PORT" -js -sd "$BENCH_DIR/nats" >"$BENCH_DIR/nats.log" 2>&1 &
  STACK_PIDS+=("$!")
  BENCH_NATS_URL="nats://127.0.0.1:$BENCH_NATS_PORT"
  for _ in $(seq 1 50); do port_in_use "$BENCH_NATS_PORT" && return 0; sleep 0.1; done
  die "nats-server did not start: $(tail -n 5 "$BENCH_DIR/nats.log")"
}

# baseline_user_svc REV — the release user-svc of git revision REV, built once in a worktree
# under .data/bench-baseline/<commit> with a target directory of its own; prints its path.
baseline_user_svc() {
  local commit dir target
  commit=$(git rev-parse --short=12 "$1^{commit}" 2>/dev/null) || die "BENCH_BASELINE: no revision $1"
  dir="$DATA_DIR/bench-baseline/$commit"
  target="$dir-target"
  if [ ! -x "$target/release/user-svc" ]; then
    [ -d "$dir" ] || git worktree add --detach "$dir" "$commit" >/dev/null 2>&1 ||
      die "cannot check out $commit in $dir"
    log "building user-svc at $1 ($commit) in $dir, once"
    # Not --locked: a revision's lock file may lag behind its manifests by a crate.
    (cd "$dir" && CARGO_TARGET_DIR=$target cargo build --release -p user-svc --bin user-svc >/dev/null) ||
      die "the baseline user-svc did not build"
  fi
  echo "$target/release/user-svc"
}

# baseline_database NAME — a fresh database for the baseline revision's user-svc, with the
# current schema (a superset of the revision's: both builds write the same indexes, so the
# ratio is the code's) and its first manager made by that revision; sets BASELINE_DB.
baseline_database() {
  BASELINE_DB=$(fresh_database "$1")
  env "${USERS_ENV[@]}" DATABASE_URL="$BASELINE_DB" ./target/release/user-svc migrate >/dev/null ||
    die "user-svc did not migrate $1"
  env "${USERS_ENV[@]}" DATABASE_URL="$BASELINE_DB" "${BASELINE_SETTINGS[@]}" "$BASELINE_BIN" \
    bootstrap-manager --email bench-manager@example.com --phone +15550000001 >/dev/null ||
    die "the baseline user-svc did not make its manager"
  BASELINE_SETTINGS+=(DATABASE_URL="$BASELINE_DB")
}

# choose_baseline — what BENCH_BASELINE names: nothing, events-off (this build recording no
# events) or a git revision (its build, on a PII key of its own, relaying events if it has them).
choose_baseline() {
  case ${BENCH_BASELINE:-} in
    "") ;;
    events-off)
      build_release user-svc
      BASELINE_BIN=./target/release/user-svc
      BASELINE_SETTINGS=(USER_SVC__EVENTS__RECORDED=false)
      BASELINE_LABEL="events off (events.recorded=false)"
      ;;
    *)
      BASELINE_REV=$BENCH_BASELINE
      BASELINE_BIN=$(baseline_user_svc "$BENCH_BASELINE")
      BASELINE_SETTINGS=(USER_SVC__DATABASE__MIGRATE_ON_START=false USER_SVC__SECURITY__PII_KEY="$BASELINE_PII_KEY")
      BASELINE_LABEL="$BENCH_BASELINE"
      ;;
  esac
}

# serve_users BIN [VAR=VALUE ...] — stops the running user-svc and serves BIN on $USERS_PORT
# with USERS_ENV and any extra settings; sets USERS_PID.
serve_users() {
  local bin=$1
  shift
  stop_users
  port_free "$USERS_PORT"
  env "${USERS_ENV[@]}" "$@" "$bin" >>"$BENCH_DIR/user-svc.log" 2>&1 &
  USERS_PID=$!
  tracked user-svc "$BENCH_DIR/user-svc.log" "http://127.0.0.1:$USERS_PORT/health/ready"
}

stop_users() {
  [ -n "${USERS_PID:-}" ] || return 0
  kill "$USERS_PID" 2>/dev/null || true
  wait "$USERS_PID" 2>/dev/null || true
  USERS_PID=""
}

# serve_current / serve_baseline — the user-svc measured: this tree's with events relayed to
# the benchmark's JetStream, or the baseline: a revision's (relaying what events it has, leaving
# the newer schema as it finds it), or this build recording none.
serve_current() {
  serve_users ./target/release/user-svc USER_SVC__EVENTS__NATS_URL="$BENCH_NATS_URL"
}
serve_baseline() {
  local relay=(USER_SVC__EVENTS__NATS_URL="$BENCH_NATS_URL")
  [ -z "$BASELINE_REV" ] && relay=()
  serve_users "$BASELINE_BIN" "${relay[@]}" "${BASELINE_SETTINGS[@]}"
}

# wrk_once NAME URL SCRIPT — one run; sets WRK_RPS and WRK_ERRORS (non-2xx and socket errors).
wrk_once() {
  local out="$BENCH_DIR/$1-$RUN_SEQ.txt"
  cpu_mark
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$3" "$2" -- "$RUN_SEQ" >"$out" 2>&1 || true
  cpu_report "$1 (run $RUN_SEQ)" "$out"
  RUN_SEQ=$((RUN_SEQ + 1))
  WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  WRK_ERRORS=$(awk '/Non-2xx or 3xx responses:/ {n += $5} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
    END {print n + 0}' "$out")
}

compare_header() {
  {
    echo
    echo "### $1 ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${CONNECTIONS} connections, ${RUNS}x${DURATION}s alternating, medians)"
    echo
    echo "| operation                    | baseline req/s | current req/s | current / baseline | errors |"
    echo "|------------------------------|---------------:|--------------:|-------------------:|-------:|"
  } | tee -a "$BENCH_DIR/table.md"
}

# warm_up URL SCRIPT — an unmeasured 2 s run.
warm_up() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$2" "$1" -- "$RUN_SEQ" >/dev/null 2>&1 || true
  RUN_SEQ=$((RUN_SEQ + 1))
}

# compare_load NAME URL SCRIPT — RUNS rounds of one baseline run then one current run, each
# against a freshly started process on its own database; one row of the medians and ratio.
# An unmeasured run of each comes first, so that every measured run follows a run of the other
# build: the first does not find its database's pages evicted by the other's seeding while
# the other's are warm.
compare_load() {
  local name=$1 url=$2 script=$3 baseline="" current="" errors=0 slug=${1// /_}
  slug=${slug//\//_}
  serve_baseline
  warm_up "$url" "$script"
  serve_current
  warm_up "$url" "$script"
  for _ in $(seq 1 "$RUNS"); do
    serve_baseline
    wrk_once "$slug-baseline" "$url" "$script"
    baseline+="$WRK_RPS " errors=$((errors + WRK_ERRORS))
    serve_current
    wrk_once "$slug-current" "$url" "$script"
    current+="$WRK_RPS " errors=$((errors + WRK_ERRORS))
  done
  compare_row "$name" "$baseline" "$current" "$errors"
}

# compare_row NAME BASELINE_RATES CURRENT_RATES ERRORS — the row of two lists' medians and ratio.
compare_row() {
  local base_rps current_rps
  base_rps=$(echo "$2" | tr ' ' '\n' | grep . | median)
  current_rps=$(echo "$3" | tr ' ' '\n' | grep . | median)
  awk -v n="$1" -v b="$base_rps" -v c="$current_rps" -v e="$4" \
    'BEGIN {printf "| %-28s | %14.0f | %13.0f | %17.2fx | %6d |\n", n, b, c, (b > 0 ? c / b : 0), e}' |
    tee -a "$BENCH_DIR/table.md"
}

# compare_keyed URL UNKEYED_SCRIPT KEYED_SCRIPT — RUNS rounds of one run of creates without an
# Idempotency-Key then one with, on the current user-svc (started afresh); one row of the
# medians and ratio.
compare_keyed() {
  local plain="" keyed="" errors=0
  serve_current
  compare_header "user-svc: POST create with an Idempotency-Key (current) against without (baseline), alternating on one process"
  warm_up "$1" "$2"
  for _ in $(seq 1 "$RUNS"); do
    wrk_once POST_create-unkeyed "$1" "$2"
    plain+="$WRK_RPS " errors=$((errors + WRK_ERRORS))
    wrk_once POST_create-keyed "$1" "$3"
    keyed+="$WRK_RPS " errors=$((errors + WRK_ERRORS))
  done
  compare_row "POST create, keyed/unkeyed" "$plain" "$keyed" "$errors"
}

# users_scenario NAME URL SCRIPT — one scenario of the users benchmark: against the baseline
# when BENCH_BASELINE is set, else the current user-svc alone (run_load's row). With
# BENCH_ONLY set, only the scenarios whose name holds it run.
users_scenario() {
  [[ "$1" == *"${BENCH_ONLY:-}"* ]] || return 0
  if [ -n "$BASELINE_BIN" ]; then
    compare_load "$@"
  else
    run_load "$1" "$USERS_PID" "$2" "$3"
  fi
}

# status_script FILE TOKEN MAX_ID — PUT status flips. Each run (wrk's first argument) takes a
# slice of 500 seeded users no other run of it touched (20 slices of 10,000 users: enough for
# the warm-up and 5 alternating runs of each build), split between the threads; a user
# goes pending -> active -> suspended -> active ... on its successive visits, so every request
# is a real move. User 1, the manager, is never in a slice.
status_script() {
  cat >"$1" <<LUA
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args)
  local slices = math.max(1, math.floor(($3 - 1) / 500))
  base = 2 + ((tonumber(args[1]) or 0) % slices) * 500
  per_thread = math.floor(500 / $THREADS)
  visits = 0
end
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"
request = function()
  local index = visits % per_thread
  local pass = math.floor(visits / per_thread)
  visits = visits + 1
  local id = base + (tid - 1) + index * $THREADS
  local status = (pass % 2 == 0) and "active" or "suspended"
  return wrk.format(nil, "/api/users/" .. id .. "/status", nil, '{"status":"' .. status .. '"}')
end
LUA
}

# bench_relay CREATE_SCRIPT — RELAY_EVENTS user creations written through the API with the relay
# off, then a user-svc relaying them to JetStream: events per second until none is unpublished.
bench_relay() {
  local create=$1 db count started ended first_last
  users_database vottery_bench_relay
  db=$USERS_DB
  users_env "$db"
  start_bench_users "$db" "$BENCH_DIR/user-svc-relay.log" "${USERS_EXTRA[@]}"
  log "writing $RELAY_EVENTS events through POST /api/users with the relay off"
  count=0
  local before
  while [ "$count" -lt "$RELAY_EVENTS" ]; do
    before=$count
    wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s "$create" "http://127.0.0.1:$USERS_PORT/api/users" -- "$RUN_SEQ" >/dev/null 2>&1 || true
    RUN_SEQ=$((RUN_SEQ + 1))
    count=$(psql "$db" -XAtc "select count(*) from vottery_user_events where published_at is null")
    [ "$count" -gt "$before" ] || die "POST /api/users wrote no event in 5 s: $(tail -n 3 "$BENCH_DIR/user-svc-relay.log")"
  done
  stop_users
  log "$count unpublished events; relaying them to $BENCH_NATS_URL"
  started=$(date +%s.%N)
  env "${USERS_ENV[@]}" USER_SVC__EVENTS__NATS_URL="$BENCH_NATS_URL" ./target/release/user-svc >>"$BENCH_DIR/user-svc-relay.log" 2>&1 &
  USERS_PID=$!
  STACK_PIDS+=("$USERS_PID")
  while [ "$(psql "$db" -XAtc "select count(*) from vottery_user_events where published_at is null")" -gt 0 ]; do
    kill -0 "$USERS_PID" 2>/dev/null || die "user-svc exited while relaying: $(tail -n 5 "$BENCH_DIR/user-svc-relay.log")"
    sleep 0.05
  done
  ended=$(date +%s.%N)
  first_last=$(psql "$db" -XAtc "select extract(epoch from max(published_at) - min(published_at)) from vottery_user_events")
  stop_users
  {
    echo
    echo "### relay into JetStream ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "| measure | events | seconds | events/s |"
    echo "|---|---:|---:|---:|"
    awk -v n="$count" -v a="$started" -v b="$ended" \
      'BEGIN {printf "| backlog relayed, from process start to an empty outbox | %d | %.2f | %.0f |\n", n, b - a, n / (b - a)}'
    awk -v n="$count" -v s="$first_last" \
      'BEGIN {printf "| first to last round (published_at) | %d | %.2f | %.0f |\n", n, s, (s > 0 ? n / s : 0)}'
  } | tee -a "$BENCH_DIR/table.md"
  kill "$SECURITY_PID" 2>/dev/null || true
  wait "$SECURITY_PID" 2>/dev/null || true
}
