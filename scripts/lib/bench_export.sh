# shellcheck shell=bash
# bench_export — user-svc's export (GET /api/users/:id/export) of a user with BENCH_EXPORT_ROWS
# (default 100,000) chained audit rows, release build: the seconds of each of BENCH_RUNS
# downloads (median reported; target < 2 s), and the growth of the service's peak resident
# memory (VmHWM) over the first download, measured right after a warm-up read (target
# < 20 MB). Each document is checked: it parses, holds every row, and its chain is valid.
# Sourced by scripts/bench.sh; uses its helpers (users_database, start_bench_users, median,
# log, die) and $BENCH_DIR, $RUNS, $USERS_PORT.

# vm_kb PID FIELD — a /proc/PID/status memory figure (VmHWM, VmRSS) in kB.
vm_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

bench_export() {
  local rows=${BENCH_EXPORT_ROWS:-100000}
  users_database vottery_bench_export
  local db=$USERS_DB
  start_bench_users "$db" "$BENCH_DIR/user-svc-export.log"
  local pid=$USERS_PID token=$USERS_TOKEN
  log "appending $rows chained audit rows to user 1"
  psql "$db" -XAq -v ON_ERROR_STOP=1 -v user_id=1 -v rows="$rows" -f scripts/lib/long_audit_trail.sql
  psql "$db" -XAqc "VACUUM ANALYZE vottery_audit_logs"

  local url="http://127.0.0.1:$USERS_PORT/api/users/1/export" file="$BENCH_DIR/export.json"
  curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$USERS_PORT/api/users/1"
  local before after seconds=() run
  before=$(vm_kb "$pid" VmHWM)
  for run in $(seq 1 "$RUNS"); do
    seconds+=("$(curl -fsS -o "$file" -w '%{time_total}' -H "Authorization: Bearer $token" "$url")")
    [ "$run" -eq 1 ] && after=$(vm_kb "$pid" VmHWM)
    jq -e --argjson min "$rows" '(.audit_trail | length) > $min and .audit_chain.valid' "$file" >/dev/null ||
      die "export run $run is incomplete or its chain does not check"
  done
  local median_s; median_s=$(printf '%s\n' "${seconds[@]}" | median)
  {
    echo
    echo "| user-svc export, $rows audit rows | seconds (median of $RUNS) | peak RSS growth | note |"
    echo "|---|---:|---:|---|"
    awk -v s="$median_s" -v b="$before" -v a="$after" -v runs="${seconds[*]}" -v size="$(stat -c %s "$file")" \
      'BEGIN {printf "| GET /api/users/1/export | %.3f | %.1f MB | target < 2 s, < 20 MB; runs: %s; %.1f MB document |\n", s, (a - b) / 1024, runs, size / 1048576}'
  } | tee -a "$BENCH_DIR/table.md"
  kill "$pid" "$SECURITY_PID" 2>/dev/null || true
}
