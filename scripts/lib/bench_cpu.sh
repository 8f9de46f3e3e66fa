# shellcheck shell=bash
# Where a load's CPU goes: with BENCH_CPU=1, each wrk run of the users benchmark also appends
# to $BENCH_DIR/cpu.md the CPU time (user + system) per request that user-svc, security-svc
# and PostgreSQL (every process of the cluster) spent during it. On a machine whose load is
# bound by its cores, these say which process a difference in requests per second comes from.
# Processes that end during a run take their time with them: a backend of a connection that
# closes mid-run is not counted.

# cpu_times PID... — one "pid ticks" line per process that exists.
cpu_times() {
  local pid
  for pid in "$@"; do
    awk -v pid="$pid" '{print pid, $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
  done
}

# cpu_mark — the CPU times of user-svc ($USERS_PID), security-svc ($SECURITY_PID) and
# PostgreSQL's processes now, for cpu_report.
cpu_mark() {
  [ "${BENCH_CPU:-0}" = 1 ] || return 0
  # shellcheck disable=SC2046 # one argument per process
  CPU_MARK=$(
    cpu_times "${USERS_PID:-}" | sed 's/^/users /'
    cpu_times "${SECURITY_PID:-}" | sed 's/^/security /'
    cpu_times $(pgrep -x postgres) | sed 's/^/postgres /'
  )
}

# cpu_header — the heading of the CPU table of the runs that follow.
cpu_header() {
  [ "${BENCH_CPU:-0}" = 1 ] || return 0
  {
    echo
    echo "### CPU per request ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${CONNECTIONS} connections, ${DURATION}s runs)"
    echo
    echo "| run                                      | requests | user-svc µs | security-svc µs | PostgreSQL µs |"
    echo "|------------------------------------------|---------:|------------:|----------------:|--------------:|"
  } | tee -a "$BENCH_DIR/cpu.md"
}

# cpu_report NAME WRK_OUTPUT — one line: microseconds of CPU per request of each since cpu_mark.
cpu_report() {
  [ "${BENCH_CPU:-0}" = 1 ] || return 0
  local requests ticks now
  requests=$(awk '/ requests in / {print $1}' "$2")
  ticks=$(getconf CLK_TCK)
  # shellcheck disable=SC2046 # one argument per process
  now=$(
    cpu_times "${USERS_PID:-}" | sed 's/^/users /'
    cpu_times "${SECURITY_PID:-}" | sed 's/^/security /'
    cpu_times $(pgrep -x postgres) | sed 's/^/postgres /'
  )
  printf '%s\n--\n%s\n' "$CPU_MARK" "$now" | awk -v name="$1" -v n="${requests:-0}" -v hz="$ticks" '
    $0 == "--" { after = 1; next }
    !after { before[$1 " " $2] = $3; next }
    { spent[$1] += $3 - before[$1 " " $2] }
    END {
      if (n == 0) exit
      printf "| %-40s | %8d | %9.0f | %12.0f | %10.0f |\n", name, n,
        spent["users"] * 1e6 / hz / n, spent["security"] * 1e6 / hz / n, spent["postgres"] * 1e6 / hz / n
    }' | tee -a "$BENCH_DIR/cpu.md"
}
