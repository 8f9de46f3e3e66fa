# shellcheck shell=bash
# bench_users_1m — the user list at 10,000 users and at a million (BENCH_USERS_1M_ROWS), the
# same requests against each, release build, BENCH_1M_CONNECTIONS (default 16) readers:
# page 1 unfiltered and with each indexed filter, a deep cursor walk (random cursors 70–95 %
# into the list), a bounded deep page number (page 500 of 20), and the lookup by email. Then
# the ratio of each million-user figure to its 10,000-user one (target: requests/s within 2x,
# p99 < 50 ms).
#
# Each database is built as a customer's would be migrated: legacy plaintext rows inserted with
# SQL, then `user-svc encrypt-existing` encrypts, indexes,
# signs and audits them in place (BENCH_1M_BATCH_SIZE rows a batch, default 200); its rate is
# reported. BENCH_1M_ENCRYPT=0 leaves the rows plaintext (the list then makes no decrypt call,
# at both sizes): a million rows take minutes to insert, encrypt-existing takes its rate's
# worth. Sourced by scripts/bench.sh; uses its
# helpers (users_database, start_bench_users, run_load, table_header, log, die) and
# $BENCH_DIR, $RUNS, $DURATION, $USERS_PORT.

# legacy_users DB_URL COUNT — COUNT plaintext rows after the bootstrap manager, spread over the
# filter values as a live installation would be: 70 % active, 85 % voters, 20 % subscribed,
# one in 5,000 an admin, countries uneven (DE about 12 %).
legacy_users() {
  psql "$1" -XAq -v ON_ERROR_STOP=1 <<SQL
INSERT INTO vottery_users (sngine_email, sngine_phone, status, user_type, subscription_status,
    admin_role, first_name, last_name, date_of_birth, country, created_at, updated_at)
SELECT 'Bench.User' || g || '@Example.com',
       '+1 (628) ' || lpad(g::text, 7, '0'),
       CASE WHEN h.s < 70 THEN 'active' WHEN h.s < 85 THEN 'verified' WHEN h.s < 95 THEN 'pending'
            ELSE 'suspended' END,
       CASE WHEN h.t < 85 THEN 'voter' WHEN h.t < 95 THEN 'individual_creator'
            ELSE 'organization_creator' END,
       CASE WHEN h.p < 20 THEN 'subscribed' ELSE 'free' END,
       CASE WHEN g % 5000 = 0 THEN (ARRAY['editor', 'analyst', 'moderator'])[1 + g / 5000 % 3] END,
       'First' || g, 'Last' || g, '19' || (50 + g % 50) || '-0' || (1 + g % 9) || '-1' || (g % 10),
       (ARRAY['DE', 'DE', 'DE', 'US', 'US', 'US', 'US', 'GB', 'GB', 'FR', 'FR', 'IN', 'BR', 'NG',
              'JP', 'MX', 'PL', 'NL', 'SE', 'ES', 'IT', 'CA', 'AU', 'KE', 'ZA'])[1 + h.c % 25],
       now() - g * interval '1 second', now()
FROM generate_series(2, $2 + 1) AS g,
     LATERAL (SELECT abs(hashint4(g)) % 100 AS s, abs(hashint4(g + 7)) % 100 AS t,
                     abs(hashint4(g + 13)) % 100 AS p, abs(hashint4(g + 29)) AS c) AS h;
SQL
}

# users_1m_database NAME COUNT — a fresh database holding the manager and COUNT users, upgraded
# by encrypt-existing and vacuumed; user-svc started on it. Sets ENCRYPT_RATE.
users_1m_database() {
  local name=$1 count=$2 batch=${BENCH_1M_BATCH_SIZE:-200}
  users_database "$name"
  local db=$USERS_DB
  start_bench_users "$db" "$BENCH_DIR/user-svc-$name.log" \
    USER_SVC__RATE_LIMIT__PER_IP_PER_MINUTE=1000000000 \
    USER_SVC__RATE_LIMIT__PER_USER_PER_MINUTE=1000000000
  log "inserting $count legacy plaintext users with SQL"
  local started; started=$(date +%s.%N)
  legacy_users "$db" "$count"
  log "  $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s"
  if [ "${BENCH_1M_ENCRYPT:-1}" = 0 ]; then
    # The rows stay as the customer's tables hold them before the upgrade (plaintext, unsigned):
    # the list reads them without a decrypt call, at both sizes alike.
    ENCRYPT_RATE=skipped
    psql "$db" -XAqc "VACUUM ANALYZE vottery_users"
    return 0
  fi
  log "encrypt-existing, batches of $batch"
  started=$(date +%s.%N)
  DATABASE_URL="$db" USER_SVC__SECURITY__URL="http://127.0.0.1:$SECURITY_PORT" \
    USER_SVC__SECURITY__TOKEN="$USER_SVC_TOKEN" USER_SVC__LOG__FILTER=warn \
    ./target/release/user-svc encrypt-existing --batch-size "$batch" \
    2>"$BENCH_DIR/encrypt-existing-$name.log" | tail -n 1 >&2
  local seconds; seconds=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  ENCRYPT_RATE=$(awk -v n="$count" -v s="$seconds" 'BEGIN {printf "%.0f", n / s}')
  log "  $count rows in $seconds s: $ENCRYPT_RATE rows/s"
  [ "$(psql "$db" -XAtc "select count(*) from vottery_users where not pii_encrypted")" = 0 ] ||
    die "encrypt-existing left plaintext rows in $name"
  # What autovacuum does after a bulk change, done now: statistics and a visibility map.
  psql "$db" -XAqc "VACUUM ANALYZE vottery_users"
}

# list_scripts DIR TOKEN COUNT — the wrk scripts of the list requests.
list_scripts() {
  local dir=$1 token=$2 count=$3 base="/api/users"
  mkdir -p "$dir"
  local name query
  while read -r name query; do
    cat >"$dir/$name.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.path = "$base?$query"
LUA
  done <<LIST
page1 limit=20
page1-status limit=20&status=active
page1-country limit=20&country=DE
page1-country-status limit=20&country=DE&status=active
page1-type limit=20&user_type=organization_creator
page1-subscription limit=20&subscription_status=subscribed
page1-admin limit=20&admin_role=editor
page1-rare limit=20&country=NG&status=suspended&user_type=individual_creator&subscription_status=subscribed
page500 limit=20&page=500
LIST
  # Deep cursors: the fingerprint of the unfiltered list comes from a cursor it handed out.
  local cursor fingerprint
  cursor=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$USERS_PORT$base?limit=1" | jq -r .next_cursor)
  fingerprint=$(printf '%s' "$cursor" | tr '_-' '/+' | awk '{n = length($0) % 4; if (n) $0 = $0 substr("===", 1, 4 - n); print}' |
    base64 -d | cut -d. -f3)
  [ -n "$fingerprint" ] || die "no cursor in the list answer"
  {
    echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""
    echo "local cursors = {"
    local id
    for id in $(awk -v n="$count" 'BEGIN {srand(7); for (i = 0; i < 500; i++) printf "%d ", n * (0.70 + 0.25 * rand())}'); do
      printf '"%s",\n' "$(printf 'a.%s.%s' "$id" "$fingerprint" | base64 -w0 | tr '/+' '_-' | tr -d '=')"
    done
    echo "}"
    echo "function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end"
    echo "request = function() return wrk.format(\"GET\", \"$base?limit=20&after=\" .. cursors[math.random(#cursors)]) end"
  } >"$dir/deep-cursor.lua"
  cat >"$dir/email.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function()
  return wrk.format("GET", "$base?email=bench.user" .. math.random(2, $count + 1) .. "%40example.com")
end
LUA
}

# list_loads LABEL — the list requests against the running user-svc, into RESULTS.
list_loads() {
  local label=$1 dir="$BENCH_DIR/lua-1m/$1" url="http://127.0.0.1:$USERS_PORT/api/users" name
  for name in page1 page1-status page1-country page1-country-status page1-type page1-subscription \
    page1-admin page1-rare page500 deep-cursor email; do
    run_load "$label $name" "$USERS_PID" "$url" "$dir/$name.lua"
  done
}

bench_users_1m() {
  local big=${BENCH_USERS_1M_ROWS:-1000000} small=10000
  local saved_connections=$CONNECTIONS
  CONNECTIONS=${BENCH_1M_CONNECTIONS:-16}
  local label count rates=()
  RESULTS=""
  for count in "$small" "$big"; do
    label=$([ "$count" = "$small" ] && echo 10k || echo 1m)
    users_1m_database "vottery_bench_users_$label" "$count"
    rates+=("$label:$ENCRYPT_RATE")
    list_scripts "$BENCH_DIR/lua-1m/$label" "$USERS_TOKEN" "$count"
    table_header "user-svc list, $count users + the manager ($label)"
    list_loads "$label"
    kill "$USERS_PID" "$SECURITY_PID" 2>/dev/null || true
    wait "$USERS_PID" "$SECURITY_PID" 2>/dev/null || true
  done
  {
    echo
    echo "### user list at $big users against 10,000 (same run; requests/s ratio, p99)"
    echo
    echo "| request | 10k req/s | 1m req/s | 1m/10k | 10k p99 (ms) | 1m p99 (ms) | 1m p50 (ms) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$RESULTS" | awk '
      { split($1, parts, "_"); size = parts[1]; name = substr($1, length(size) + 2)
        rps[size, name] = $2; p50[size, name] = $4; p99[size, name] = $5
        if (size == "10k") order[++n] = name }
      END { for (i = 1; i <= n; i++) { k = order[i]
        printf "| %s | %.0f | %.0f | %.2f | %s | %s | %s |\n", k, rps["10k", k], rps["1m", k],
          (rps["10k", k] > 0 ? rps["1m", k] / rps["10k", k] : 0), p99["10k", k], p99["1m", k], p50["1m", k] } }'
    echo
    echo "encrypt-existing rows/s: ${rates[*]}"
  } | tee -a "$BENCH_DIR/table.md"
  CONNECTIONS=$saved_connections
}
