#!/usr/bin/env bash
# Load benchmarks of the release binaries on loopback, with wrk.
#
#   scripts/bench.sh security   security-svc: encrypt, decrypt, sign/verify (ed25519, ecdsa-p256),
#                               batch-100 encrypt, and a bare actix-web handler as the ceiling
#   scripts/bench.sh users      user-svc with 10,000 seeded users: GET one, GET a page of 20,
#                               POST create (without and with an Idempotency-Key), PUT profile,
#                               PUT status (security-svc as its own process; events relayed to a
#                               JetStream of the benchmark's own), then POST create with a key
#                               against without, alternating on one process, then the relay's throughput from a backlog of BENCH_RELAY_EVENTS
#                               (default 20,000) events (scripts/lib/bench_events.sh)
#   scripts/bench.sh crypto     criterion micro-benchmarks of the transit operations in-process
#   scripts/bench.sh guardians  vottery-election's criterion benchmarks, a full 3-of-5 key ceremony
#                               between 5 release instances over loopback (`security-svc ceremony
#                               run`), a threshold decryption with 3 of them, and the electionguard
#                               reference doing the same arithmetic, with the ratios
#                               (BENCH_GUARDIANS_CRITERION=0 reuses the last criterion results)
#   scripts/bench.sh export     user-svc's export of a user with 100,000 audit rows: seconds and
#                               peak memory growth (scripts/lib/bench_export.sh)
#   scripts/bench.sh users-1m   user-svc's list at 10,000 and 1,000,000 users (SQL rows upgraded by
#                               encrypt-existing), 16 readers, with the ratios (lib/bench_users_1m.sh)
#   scripts/bench.sh all        all of the above
#
# Each load runs BENCH_RUNS times (default 3) for BENCH_SECONDS (default 10) with
# BENCH_CONNECTIONS (default 32) connections; the table shows medians. Peak resident memory of
# the service under load is sampled from /proc. Results are also written to .data/bench/.
# BENCH_REMEMBERED_SIGNATURES sets user-svc's memory of valid record signatures in the users
# benchmark (default as configured; 0 verifies every record's signature in full).
# BENCH_BASELINE=<git rev> (users) builds that revision's release user-svc once, in a worktree
# under .data/bench-baseline/, and runs each users scenario against it and the current one,
# alternating, each on a database of 10,000 users it created itself; each row shows both rates
# and their ratio. Both relay their events to the benchmark's JetStream (a revision without
# events has none).
# BENCH_BASELINE=events-off compares the current user-svc recording no events
# (events.recorded=false) with the same build recording and relaying them.
# BENCH_ONLY=<text> (users) runs only the scenarios whose name holds it ("POST create").
# BENCH_CPU=1 (users) also writes each run's CPU time per request of user-svc, security-svc
# and PostgreSQL to .data/bench/cpu.md (scripts/lib/bench_cpu.sh).
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh
# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh
# shellcheck source=lib/bench_export.sh
. scripts/lib/bench_export.sh
# shellcheck source=lib/bench_users_1m.sh
. scripts/lib/bench_users_1m.sh
# shellcheck source=lib/bench_events.sh
. scripts/lib/bench_events.sh
# shellcheck source=lib/bench_cpu.sh
. scripts/lib/bench_cpu.sh

MODE=${1:-all}
DURATION=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
BENCH_DIR="$DATA_DIR/bench"
SECURITY_PORT=${BENCH_SECURITY_PORT:-18201}
USERS_PORT=${BENCH_USERS_PORT:-18081}
CEILING_PORT=${BENCH_CEILING_PORT:-18299}
GUARDIANS_PORT=${BENCH_GUARDIANS_PORT:-18211}
GUARDIAN_CIPHERTEXTS=${BENCH_GUARDIAN_CIPHERTEXTS:-100}
ADMIN_TOKEN=bench-security-admin-token
USER_SVC_TOKEN=bench-user-svc-token
mkdir -p "$BENCH_DIR"

trap stop_stack EXIT INT TERM

# tracked NAME LOG URL — the process just started in the background is stopped on exit and
# waited for until URL answers (stack.sh's wait_http).
tracked() {
  local pid=$!
  STACK_PIDS+=("$pid")
  wait_http "$3" "$pid" "$1" "$2" 60
}

port_free() { # PORT — refuses to start when something already listens there (it would be measured)
  ! port_in_use "$1" || die "port $1 is already in use; stop what listens there, or set BENCH_*_PORT"
}

# rss_sampler PID FILE — writes the peak VmRSS (kB) seen while it runs.
rss_sampler() {
  local pid=$1 file=$2 peak=0 rss
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$file"
    sleep 0.2
  done
}

to_ms() { # "1.23ms" | "850.00us" | "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.2f", n }'
}

median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print 0; else print a[int((NR + 1) / 2)] }'; }

RESULTS=""
# run_load NAME PID URL SCRIPT [ITEMS_PER_REQUEST] — RUNS wrk runs, medians into RESULTS.
run_load() {
  local name=$1 pid=$2 url=$3 script=$4 items=${5:-1}
  local rps_list="" p50_list="" p99_list="" rss_peak=0 errors=0
  for run in $(seq 1 "$RUNS"); do
    local out="$BENCH_DIR/${name//\//_}-$run.txt" rss_file="$BENCH_DIR/${name//\//_}-$run.rss"
    echo 0 >"$rss_file"
    rss_sampler "$pid" "$rss_file" &
    local sampler=$!
    cpu_mark
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$url" -- "$RUN_SEQ" >"$out" 2>&1 || true
    cpu_report "$name (run $RUN_SEQ)" "$out"
    RUN_SEQ=$((RUN_SEQ + 1))
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    rps_list+="$(awk '/^Requests\/sec:/ {print $2}' "$out") "
    p50_list+="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")") "
    p99_list+="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")") "
    local rss; rss=$(cat "$rss_file")
    [ "$rss" -gt "$rss_peak" ] && rss_peak=$rss
    errors=$((errors + $(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out" | head -1 | sed 's/^$/0/') + 0))
    errors=$((errors + $(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out" | sed 's/^$/0/') + 0))
  done
  local rps p50 p99
  rps=$(echo "$rps_list" | tr ' ' '\n' | grep . | median)
  p50=$(echo "$p50_list" | tr ' ' '\n' | grep . | median)
  p99=$(echo "$p99_list" | tr ' ' '\n' | grep . | median)
  local items_per_sec; items_per_sec=$(awk -v r="$rps" -v i="$items" 'BEGIN {printf "%.0f", r * i}')
  printf '| %-28s | %10.0f | %12s | %8s | %8s | %8s | %6s |\n' \
    "$name" "$rps" "$items_per_sec" "$p50" "$p99" "$((rss_peak / 1024))" "$errors" | tee -a "$BENCH_DIR/table.md"
  RESULTS+="${name// /_} $rps $items_per_sec $p50 $p99 $((rss_peak / 1024)) $errors"$'\n'
}

RUN_SEQ=1
table_header() {
  {
    echo
    echo "### $1 ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${CONNECTIONS} connections, ${RUNS}x${DURATION}s, medians)"
    echo
    echo "| operation                    |  requests/s |      items/s | p50 (ms) | p99 (ms) | RSS (MB) | errors |"
    echo "|------------------------------|------------:|-------------:|---------:|---------:|---------:|-------:|"
  } | tee -a "$BENCH_DIR/table.md"
}

# post_script FILE BODY HEADER_NAME HEADER_VALUE
post_script() {
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["$3"] = "$4"
wrk.body = [[$2]]
LUA
}

fresh_database() { # NAME -> prints its URL
  drop_database "$DATABASE_URL" "$1"
  ensure_database "$DATABASE_URL" "$1"
  database_url "$DATABASE_URL" "$1"
}

build_release() { # [SERVICE ...] — both services when none is named
  [ $# -gt 0 ] || set -- security-svc user-svc
  local packages=() service
  for service in "$@"; do packages+=(-p "$service"); done
  log "building release binaries ($*)"
  cargo build --release --locked "${packages[@]}" --bins --examples >/dev/null
}

# start_security DB_URL [VAR=VALUE ...] — initialises (one share) and starts security-svc with
# any extra settings; sets SECURITY_PID.
start_security() {
  local url=$1 key="$BENCH_DIR/root.key"
  rm -f "$key"
  DATABASE_URL=$url SECURITY_SVC__LOG__FILTER=warn ./target/release/security-svc operator init --shares 1 --threshold 1 \
    --root-key-file "$key" >/dev/null
  shift
  run_security "$url" "$@"
}

# run_security DB_URL [VAR=VALUE ...] — starts an initialised security-svc; sets SECURITY_PID.
run_security() {
  local url=$1 key="$BENCH_DIR/root.key"
  shift
  port_free "$SECURITY_PORT"
  env "$@" \
  DATABASE_URL=$url \
  SECURITY_SVC__APPLICATION__PORT=$SECURITY_PORT \
  SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE=$key \
  SECURITY_SVC__LOG__FILTER=warn \
  SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET=$ADMIN_TOKEN \
  SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET=$USER_SVC_TOKEN \
    ./target/release/security-svc >"$BENCH_DIR/security-svc.log" 2>&1 &
  SECURITY_PID=$!
  tracked security-svc "$BENCH_DIR/security-svc.log" "http://127.0.0.1:$SECURITY_PORT/health/ready"
}

create_key() { # NAME TYPE [context_keys]
  curl -fs -o /dev/null -H "X-Vault-Token: $ADMIN_TOKEN" -X POST \
    "http://127.0.0.1:$SECURITY_PORT/v1/transit/keys/$1" -d "{\"type\":\"$2\"${3:+,\"$3\":true}}"
}

transit() { # PATH BODY -> response
  curl -fs -H "X-Vault-Token: $ADMIN_TOKEN" -X POST "http://127.0.0.1:$SECURITY_PORT/v1/transit/$1" -d "$2"
}

field() { jq -r --arg name "$1" '.data[$name]'; }

bench_security() {
  build_release
  local db; db=$(fresh_database vottery_bench_security)
  # The same signature is verified over and over here: without this, the verify rows would
  # measure security-svc's memory of valid signatures, not the signature arithmetic. The
  # remembered path gets a row of its own below.
  start_security "$db" SECURITY_SVC__TRANSIT__REMEMBERED_SIGNATURES=0
  create_key bench-aes aes256-gcm96
  create_key bench-ed ed25519
  create_key bench-ec ecdsa-p256
  local plaintext input ciphertext sig_ed sig_ec batch
  plaintext=$(head -c 64 /dev/urandom | base64 -w0)
  input=$plaintext
  ciphertext=$(transit encrypt/bench-aes "{\"plaintext\":\"$plaintext\"}" | field ciphertext)
  sig_ed=$(transit sign/bench-ed "{\"input\":\"$input\"}" | field signature)
  sig_ec=$(transit sign/bench-ec "{\"input\":\"$input\"}" | field signature)
  batch=$(for _ in $(seq 1 100); do printf '{"plaintext":"%s"},' "$plaintext"; done)
  batch=${batch%,}

  local s="$BENCH_DIR/lua"; mkdir -p "$s"
  post_script "$s/ceiling.lua" "{\"plaintext\":\"$plaintext\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/encrypt.lua" "{\"plaintext\":\"$plaintext\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/decrypt.lua" "{\"ciphertext\":\"$ciphertext\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/sign.lua" "{\"input\":\"$input\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/verify-ed.lua" "{\"input\":\"$input\",\"signature\":\"$sig_ed\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/verify-ec.lua" "{\"input\":\"$input\",\"signature\":\"$sig_ec\"}" X-Vault-Token "$ADMIN_TOKEN"
  post_script "$s/batch.lua" "{\"batch_input\":[$batch]}" X-Vault-Token "$ADMIN_TOKEN"

  port_free "$CEILING_PORT"
  ./target/release/examples/ceiling "$CEILING_PORT" >"$BENCH_DIR/ceiling.log" 2>&1 &
  local ceiling=$!
  tracked ceiling "$BENCH_DIR/ceiling.log" "http://127.0.0.1:$CEILING_PORT/"

  local base="http://127.0.0.1:$SECURITY_PORT/v1/transit"
  table_header "security-svc"
  run_load "ceiling (bare actix handler)" "$ceiling" "http://127.0.0.1:$CEILING_PORT/" "$s/ceiling.lua"
  kill "$ceiling" 2>/dev/null || true
  run_load "encrypt aes256-gcm96 64 B" "$SECURITY_PID" "$base/encrypt/bench-aes" "$s/encrypt.lua"
  run_load "decrypt aes256-gcm96 64 B" "$SECURITY_PID" "$base/decrypt/bench-aes" "$s/decrypt.lua"
  run_load "sign ed25519" "$SECURITY_PID" "$base/sign/bench-ed" "$s/sign.lua"
  run_load "verify ed25519" "$SECURITY_PID" "$base/verify/bench-ed" "$s/verify-ed.lua"
  run_load "sign ecdsa-p256" "$SECURITY_PID" "$base/sign/bench-ec" "$s/sign.lua"
  run_load "verify ecdsa-p256" "$SECURITY_PID" "$base/verify/bench-ec" "$s/verify-ec.lua"
  run_load "encrypt batch of 100" "$SECURITY_PID" "$base/encrypt/bench-aes" "$s/batch.lua" 100
  kill "$SECURITY_PID" 2>/dev/null || true
  wait "$SECURITY_PID" 2>/dev/null || true
  run_security "$db"
  run_load "verify ed25519 (remembered)" "$SECURITY_PID" "$base/verify/bench-ed" "$s/verify-ed.lua"
  local ceiling_rps encrypt_rps
  ceiling_rps=$(echo "$RESULTS" | awk '$1 ~ /^ceiling/ {print $2}')
  encrypt_rps=$(echo "$RESULTS" | awk '$1 == "encrypt_aes256-gcm96_64_B" {print $2}')
  awk -v e="$encrypt_rps" -v c="$ceiling_rps" 'BEGIN { if (c > 0) printf "\nsingle-item encrypt = %.0f%% of the ceiling\n", 100 * e / c }' |
    tee -a "$BENCH_DIR/table.md"
  kill "$SECURITY_PID" 2>/dev/null || true
}

# start_bench_users DB_URL LOG [VAR=VALUE ...] — bootstraps user 1 as a manager and starts a
# release user-svc on $USERS_PORT against the security-svc on $SECURITY_PORT, with any extra
# settings; sets USERS_PID and USERS_TOKEN (user 1's token).
start_bench_users() {
  local db=$1 log_file=$2
  shift 2
  local env=(
    DATABASE_URL="$db"
    USER_SVC__APPLICATION__PORT="$USERS_PORT"
    USER_SVC__SECURITY__URL="http://127.0.0.1:$SECURITY_PORT"
    USER_SVC__SECURITY__TOKEN="$USER_SVC_TOKEN"
    USER_SVC__LOG__FILTER=warn
    "$@"
  )
  env "${env[@]}" ./target/release/user-svc bootstrap-manager --email bench-manager@example.com --phone +15550000001 >/dev/null
  USERS_TOKEN=$(env "${env[@]}" ./target/release/user-svc issue-dev-token 1)
  port_free "$USERS_PORT"
  env "${env[@]}" ./target/release/user-svc >"$log_file" 2>&1 &
  USERS_PID=$!
  tracked user-svc "$log_file" "http://127.0.0.1:$USERS_PORT/health/ready"
}

# users_database NAME — a fresh database with security-svc started on it and user-svc's three
# transit keys created; prints nothing, sets USERS_DB.
users_database() {
  build_release
  USERS_DB=$(fresh_database "$1")
  start_security "$USERS_DB"
  create_key vottery-users-pii aes256-gcm96 context_keys
  create_key vottery-users-index hmac
  create_key vottery-users-records ed25519
}

bench_users() {
  choose_baseline
  start_bench_nats
  users_database vottery_bench_users
  # A revision from before per-user context keys encrypts without a context: it gets a PII
  # key of its own.
  [ -z "$BASELINE_REV" ] || create_key "$BASELINE_PII_KEY" aes256-gcm96
  local db=$USERS_DB
  export DATABASE_URL_USERS=$db
  USERS_EXTRA=(
    USER_SVC__RATE_LIMIT__PER_IP_PER_MINUTE=1000000000
    USER_SVC__RATE_LIMIT__PER_USER_PER_MINUTE=1000000000
  )
  # BENCH_REMEMBERED_SIGNATURES=0 makes every read verify its records' signatures in full.
  [ -n "${BENCH_REMEMBERED_SIGNATURES:-}" ] &&
    USERS_EXTRA+=(USER_SVC__SECURITY__REMEMBERED_SIGNATURES="$BENCH_REMEMBERED_SIGNATURES")
  users_env "$db"
  start_bench_users "$db" "$BENCH_DIR/user-svc.log" "${USERS_EXTRA[@]}" USER_SVC__EVENTS__NATS_URL="$BENCH_NATS_URL"
  local token=$USERS_TOKEN

  local s="$BENCH_DIR/lua"; mkdir -p "$s"
  cat >"$s/create.lua" <<LUA
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) run = tonumber(args[1]) or 0; counter = 0 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
request = function()
  counter = counter + 1
  local body = string.format('{"sngine_email":"bench-%d-%d-%d@example.com","sngine_phone":"+44%04d%07d","user_type":"voter","subscription_status":"free","first_name":"Bench","country":"GB"}',
    run, tid, counter, (run * 16 + tid) % 10000, counter)
  return wrk.format(nil, nil, nil, body)
end
LUA
  # The same creations, each with its own Idempotency-Key (numbers offset so they never meet
  # the unkeyed ones). A phone number is +44, four digits of the run and thread (unique for
  # 625 runs of up to 16 threads) and a counter, so no run meets another's numbers.
  cat >"$s/create-keyed.lua" <<LUA
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) run = tonumber(args[1]) or 0; counter = 0 end
wrk.method = "POST"
request = function()
  counter = counter + 1
  local body = string.format('{"sngine_email":"keyed-%d-%d-%d@example.com","sngine_phone":"+44%02d%08d","user_type":"voter","subscription_status":"free","first_name":"Bench","country":"GB"}',
    run, tid, counter, (run * 16 + tid) % 10000, 5000000 + counter)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer $token",
    ["Idempotency-Key"] = string.format('"bench-%d-%d-%d"', run, tid, counter),
  }
  return wrk.format(nil, nil, headers, body)
end
LUA
  seed_users "$db" "$s/create.lua"
  local total=$SEEDED max_id=$SEEDED_MAX_ID
  # A revision gets a database of its own, seeded through itself, so that each build reads
  # rows it wrote: the current one's under per-user context keys, which a revision before
  # them cannot read. Both are measured on the ids both have.
  if [ -n "$BASELINE_REV" ]; then
    baseline_database vottery_bench_users_baseline
    serve_baseline
    seed_users "$BASELINE_DB" "$s/create.lua"
    [ "$SEEDED_MAX_ID" -lt "$max_id" ] && max_id=$SEEDED_MAX_ID
  fi

  cat >"$s/get-one.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
function init(args) math.randomseed(os.time() + (tonumber(args[1]) or 0) * 7919 + math.floor(os.clock() * 1e6)) end
request = function() return wrk.format("GET", "/api/users/" .. math.random(1, $max_id)) end
LUA
  cat >"$s/get-page.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function() return wrk.format("GET", "/api/users?limit=20&page=" .. math.random(1, 500)) end
LUA
  cat >"$s/put-profile.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function()
  local id = math.random(2, $max_id)
  return wrk.format(nil, "/api/users/" .. id .. "/profile", nil, '{"city":"Bench City ' .. math.random(1, 1000) .. '"}')
end
LUA
  status_script "$s/put-status.lua" "$token" "$max_id"
  local base="http://127.0.0.1:$USERS_PORT"
  if [ -n "$BASELINE_BIN" ]; then
    compare_header "user-svc: $BASELINE_LABEL against the current tree (events relayed), $total users seeded"
  else
    table_header "user-svc ($total users seeded, events relayed to JetStream)"
  fi
  cpu_header
  users_scenario "GET one user (random id)" "$base/api/users/1" "$s/get-one.lua"
  users_scenario "GET a page of 20 + total" "$base/api/users" "$s/get-page.lua"
  users_scenario "POST create" "$base/api/users" "$s/create.lua"
  users_scenario "POST create with Idempotency-Key" "$base/api/users" "$s/create-keyed.lua"
  users_scenario "PUT profile (random id)" "$base/api/users/2/profile" "$s/put-profile.lua"
  users_scenario "PUT status (active, suspended)" "$base/api/users/2/status" "$s/put-status.lua"
  if [[ "POST create" == *"${BENCH_ONLY:-}"* ]]; then
    compare_keyed "$base/api/users" "$s/create.lua" "$s/create-keyed.lua"
  fi
  stop_users
  kill "$SECURITY_PID" 2>/dev/null || true
  wait "$SECURITY_PID" 2>/dev/null || true
  bench_relay "$s/create.lua"
}

# seed_users DB_URL CREATE_SCRIPT — creates users through the user-svc on $USERS_PORT until DB
# holds 10,000, then vacuums and analyzes the table; sets SEEDED and SEEDED_MAX_ID.
seed_users() {
  local db=$1 create=$2 rounds=0
  SEEDED=0
  log "seeding 10,000 users through POST /api/users"
  while [ "$SEEDED" -lt 10000 ]; do
    # Bounded: a user-svc that refuses the creations (see its log) stops the benchmark.
    rounds=$((rounds + 1))
    [ "$rounds" -le 60 ] || die "only $SEEDED users seeded after $((rounds - 1)) rounds; see $BENCH_DIR/user-svc.log"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s "$create" "http://127.0.0.1:$USERS_PORT/api/users" -- "$RUN_SEQ" >/dev/null 2>&1 || true
    RUN_SEQ=$((RUN_SEQ + 1))
    SEEDED=$(psql "$db" -XAtc "select count(*) from vottery_users")
  done
  SEEDED_MAX_ID=$(psql "$db" -XAtc "select max(id) from vottery_users")
  log "$SEEDED users seeded"
  # What autovacuum does to a table that has just grown by 10,000 rows, done now rather than
  # whenever its next cycle comes: statistics for the planner and a visibility map for
  # index-only scans (the page total and the page offset use them).
  psql "$db" -XAqc "VACUUM ANALYZE vottery_users"
}

bench_crypto() {
  log "criterion micro-benchmarks (in-process transit operations)"
  cargo bench --locked -p security-svc --bench transit -- --noplot 2>&1 | grep -E "^[a-z].*time:|time:" | tee -a "$BENCH_DIR/table.md"
}

# start_guardian INDEX — security-svc for guardian INDEX on its own database and port
# (GUARDIANS_PORT + INDEX - 1), unsealed from a development root key, with a token that may run
# the guardian operations on guardians named g<INDEX>-*.
start_guardian() {
  local index=$1 port=$((GUARDIANS_PORT + $1 - 1)) key="$BENCH_DIR/guardian-$1.key" db
  db=$(fresh_database "vottery_bench_guardian_$index")
  rm -f "$key"
  DATABASE_URL=$db SECURITY_SVC__LOG__FILTER=warn ./target/release/security-svc operator init \
    --shares 1 --threshold 1 --root-key-file "$key" >/dev/null
  port_free "$port"
  env DATABASE_URL="$db" \
    SECURITY_SVC__APPLICATION__PORT="$port" \
    SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE="$key" \
    SECURITY_SVC__LOG__FILTER=warn \
    SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET="$ADMIN_TOKEN" \
    SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET="$USER_SVC_TOKEN" \
    SECURITY_SVC__AUTH__TOKENS__TRUSTEE__SECRET="bench-trustee-$index" \
    SECURITY_SVC__AUTH__TOKENS__TRUSTEE__OPERATIONS=guardian-ceremony,guardian-decrypt \
    SECURITY_SVC__AUTH__TOKENS__TRUSTEE__KEYS="g$index-*" \
    ./target/release/security-svc >"$BENCH_DIR/guardian-$index.log" 2>&1 &
  tracked "guardian $index" "$BENCH_DIR/guardian-$index.log" "http://127.0.0.1:$port/health/ready"
}

now() { date +%s.%N; }

# criterion_rate NAME_FRAGMENT — elements per second of the criterion bench whose path holds
# NAME_FRAGMENT (mean of the last run; each of those benches handles 100 elements).
criterion_rate() {
  local file
  file=$(find target/criterion -path "*$1*/new/estimates.json" | head -n 1)
  [ -n "$file" ] || { echo 0; return; }
  jq -r '100 / (.mean.point_estimate / 1e9)' "$file"
}

criterion_seconds() { # NAME_FRAGMENT — mean seconds of one iteration
  local file
  file=$(find target/criterion -path "*$1*/new/estimates.json" | head -n 1)
  [ -n "$file" ] || { echo 0; return; }
  jq -r '.mean.point_estimate / 1e9' "$file"
}

# seconds_since START — the seconds from START (a `now`) to now, to the millisecond.
seconds_since() {
  awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'
}

# alternating_bits N — the values 1,0,1,0,… N of them, comma-separated: what the guardians'
# threshold decryption is given to encrypt.
alternating_bits() {
  seq -s, 1 "$1" | awk -F, '{for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "," : ""), $i % 2}'
}

# guardians_of_run RUN COUNT — sets the caller's `guardians` (the --guardian flags) and `tokens`
# (their token variables) for guardians 1 to COUNT of ceremony run RUN.
guardians_of_run() {
  local run=$1 index
  guardians=() tokens=()
  for index in $(seq 1 "$2"); do
    guardians+=(--guardian "g$index-r$run=http://127.0.0.1:$((GUARDIANS_PORT + index - 1))")
    tokens+=("GUARDIAN_TOKEN_G${index}_R$run=bench-trustee-$index")
  done
}

bench_guardians() {
  ensure_electionguard
  if [ "${BENCH_GUARDIANS_CRITERION:-1}" = 1 ]; then
    log "criterion benchmarks of vottery-election (in-process, all cores)"
    cargo bench --locked -p vottery-election --bench election -- --noplot 2>&1 |
      grep -E "time:|thrpt:|^[a-z].*/" | tee -a "$BENCH_DIR/table.md"
  else
    log "BENCH_GUARDIANS_CRITERION=0: the ratios use the last criterion results in target/criterion"
  fi
  build_release security-svc

  log "starting 5 guardian instances (release)"
  local index names=() guardians=() tokens=()
  for index in 1 2 3 4 5; do
    start_guardian "$index"
  done

  log "3-of-5 key ceremonies over loopback, $RUNS runs"
  local run seconds_list="" state="$BENCH_DIR/ceremony-state.json" record="$BENCH_DIR/ceremony.json"
  for run in $(seq 1 "$RUNS"); do
    guardians_of_run "$run" 5
    rm -f "$state"
    local started
    started=$(now)
    env "${tokens[@]}" ./target/release/security-svc ceremony run --ceremony-id "bench-$run" \
      --quorum 3 --state "$state" "${guardians[@]}" >"$record" 2>"$BENCH_DIR/ceremony-$run.log" ||
      die "the ceremony failed: $(tail -n 3 "$BENCH_DIR/ceremony-$run.log")"
    seconds_list+="$(seconds_since "$started") "
  done
  local ceremony_seconds
  ceremony_seconds=$(echo "$seconds_list" | tr ' ' '\n' | grep . | median)

  log "threshold decryption of $GUARDIAN_CIPHERTEXTS ciphertexts with 3 of the 5 guardians"
  local values ciphertexts="$BENCH_DIR/guardian-ciphertexts.json" decrypted="$BENCH_DIR/guardian-decrypted.json"
  values=$(alternating_bits "$GUARDIAN_CIPHERTEXTS")
  ./target/release/security-svc ceremony encrypt --record "$record" --values "$values" >"$ciphertexts"
  guardians_of_run "$RUNS" 3
  local started decrypt_seconds
  started=$(now)
  env "${tokens[@]}" ./target/release/security-svc ceremony decrypt --record "$record" \
    --ciphertexts "$ciphertexts" "${guardians[@]}" >"$decrypted" || die "the decryption failed"
  decrypt_seconds=$(seconds_since "$started")
  [ "$(jq '[.[].m] | add' "$decrypted")" = "$((GUARDIAN_CIPHERTEXTS / 2 + GUARDIAN_CIPHERTEXTS % 2))" ] ||
    die "the decryption gave the wrong plaintexts"

  log "one guardian's decrypt route: 1,000 ciphertexts per call, $RUNS calls"
  local batch="$BENCH_DIR/guardian-decrypt-body.json" route_list="" call
  values=$(alternating_bits 1000)
  ./target/release/security-svc ceremony encrypt --record "$record" --values "$values" |
    jq -c '{extended_base_hash: "01", ciphertexts: .}' >"$batch"
  for call in $(seq 1 "$RUNS"); do
    started=$(now)
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$GUARDIANS_PORT/v1/guardians/g1-r$RUNS/decrypt" \
      -H "X-Vault-Token: bench-trustee-1" -H 'Content-Type: application/json' --data-binary "@$batch" ||
      die "the decrypt route refused the batch"
    route_list+="$(awk -v s="$(seconds_since "$started")" 'BEGIN {printf "%.0f", 1000 / s}') "
  done
  local route_rate
  route_rate=$(echo "$route_list" | tr ' ' '\n' | grep . | median)

  log "the electionguard reference doing one guardian's work"
  local reference
  reference=$("$ELECTIONGUARD_PYTHON" scripts/guardians/eg_reference.py bench --count "${BENCH_REFERENCE_COUNT:-50}")
  local rust_decrypt rust_verify ref_decrypt ref_verify memory_ceremony
  rust_decrypt=$(criterion_rate "partially_decrypt_batch")
  rust_verify=$(criterion_rate "verify_partial_batch")
  memory_ceremony=$(criterion_seconds "3 of 5 in memory")
  ref_decrypt=$(echo "$reference" | jq -r .partial_decrypt_per_s)
  ref_verify=$(echo "$reference" | jq -r .verify_per_s)
  {
    echo
    echo "### guardians ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "| measure | vottery | electionguard 1.4.0 | ratio |"
    echo "|---|---:|---:|---:|"
    awk -v r="$rust_decrypt" -v p="$ref_decrypt" 'BEGIN {printf "| partial decryption with proof (per s, all cores) | %.0f | %.1f | %.1fx |\n", r, p, (p > 0 ? r / p : 0)}'
    awk -v r="$route_rate" -v p="$ref_decrypt" 'BEGIN {printf "| partial decryption with proof, one instance'"'"'s route, 1,000 per call (per s) | %.0f | %.1f | %.1fx |\n", r, p, (p > 0 ? r / p : 0)}'
    awk -v r="$rust_verify" -v p="$ref_verify" 'BEGIN {printf "| Chaum-Pedersen verification (per s, all cores) | %.0f | %.1f | %.1fx |\n", r, p, (p > 0 ? r / p : 0)}'
    echo
    echo "| measure | seconds | note |"
    echo "|---|---:|---|"
    echo "| 3-of-5 ceremony, 5 release instances over loopback (median of $RUNS) | $ceremony_seconds | target < 5 s; runs: $seconds_list|"
    awk -v m="$memory_ceremony" -v c="$ceremony_seconds" 'BEGIN {printf "| 3-of-5 ceremony in memory (criterion) | %.3f | loopback / in memory = %.1fx |\n", m, (m > 0 ? c / m : 0)}'
    echo "| decrypt $GUARDIAN_CIPHERTEXTS ciphertexts with 3 of 5 (2 compensated), every proof checked | $decrypt_seconds | $(awk -v n="$GUARDIAN_CIPHERTEXTS" -v s="$decrypt_seconds" 'BEGIN {printf "%.0f ciphertexts/s", n / s}') |"
  } | tee -a "$BENCH_DIR/table.md"
}

command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl
command -v jq >/dev/null 2>&1 || apt_install jq
ensure_postgres
: >"$BENCH_DIR/table.md"
case "$MODE" in
  security) bench_security ;;
  users) bench_users ;;
  crypto) bench_crypto ;;
  guardians) bench_guardians ;;
  export) bench_export ;;
  users-1m) bench_users_1m ;;
  all) bench_security; RESULTS=""; bench_users; bench_crypto; bench_guardians; bench_export ;;
  *) die "usage: scripts/bench.sh [security|users|users-1m|crypto|guardians|export|all]" ;;
esac
log "results: $BENCH_DIR/table.md"
