# shellcheck shell=bash
# Provisioning shared by scripts/test.sh, scripts/dev.sh and scripts/bench.sh.
#
# Each `ensure_*` function makes one backing service reachable and exports its URL:
# a configured URL is used when it answers; otherwise the machine's own server is
# started; otherwise a private one is created under .data/ with the system binaries,
# installing the Debian package first when it is missing (as root).

ROOT_DIR=${ROOT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DATA_DIR=${DATA_DIR:-$ROOT_DIR/.data}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install PACKAGE... — installs Debian packages when running as root.
apt_install() {
  is_root || die "missing packages ($*): install them or run as root"
  log "installing Debian packages: $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null || die "apt-get install $* failed"
  fi
}

# --- PostgreSQL -----------------------------------------------------------------

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

pg_answers() { # URL
  command -v psql >/dev/null 2>&1 || return 1
  PGCONNECT_TIMEOUT=3 psql "$1" -XAtqc 'select 1' >/dev/null 2>&1
}

# run_as_postgres CMD... — the server refuses to run as root.
run_as_postgres() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_machine_postgres() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  local version cluster port status
  while read -r version cluster port status _; do
    [ "$version" = Ver ] && continue
    if [ "$status" != online ] && is_root; then
      log "starting the machine's PostgreSQL cluster $version/$cluster"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >/dev/null 2>&1 || continue
    fi
    local url="postgres://postgres@127.0.0.1:$port/postgres"
    if pg_answers "$url"; then echo "$url"; return 0; fi
  done < <(pg_lsclusters 2>/dev/null)
  return 1
}

# The private cluster lives under .data/postgres unless the postgres user cannot
# reach that path (a checkout under /root); then under /var/tmp, keyed by checkout.
private_pg_dir() {
  local dir="$DATA_DIR/postgres"
  if is_root && ! runuser -u postgres -- test -x "$DATA_DIR" 2>/dev/null; then
    dir="/var/tmp/vottery-postgres-$(printf '%s' "$ROOT_DIR" | sha256sum | cut -c1-12)"
  fi
  echo "$dir"
}

start_private_postgres() {
  local bin port dir
  bin=$(pg_bin_dir) || { apt_install postgresql; bin=$(pg_bin_dir) || die "no PostgreSQL binaries after installing"; }
  port=${PRIVATE_PG_PORT:-55432}
  mkdir -p "$DATA_DIR"
  dir=$(private_pg_dir)
  if [ ! -f "$dir/PG_VERSION" ]; then
    log "creating a private PostgreSQL cluster in $dir"
    mkdir -p "$dir"
    is_root && chown postgres: "$dir"
    run_as_postgres "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale >/dev/null \
      || die "initdb failed"
  fi
  mkdir -p "$dir/run"
  is_root && chown postgres: "$dir/run"
  if ! run_as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    log "starting the private PostgreSQL on 127.0.0.1:$port"
    run_as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
      || die "the private PostgreSQL did not start; see $dir/server.log"
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

# ensure_postgres — exports DATABASE_URL pointing at a server that answers.
ensure_postgres() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if [ -n "${DATABASE_URL:-}" ] && pg_answers "$DATABASE_URL"; then
    log "PostgreSQL: using DATABASE_URL"
  elif url=$(start_machine_postgres); then
    DATABASE_URL=$url
    log "PostgreSQL: using the machine's cluster at $url"
  else
    DATABASE_URL=$(start_private_postgres)
    pg_answers "$DATABASE_URL" || die "PostgreSQL at $DATABASE_URL does not answer"
    log "PostgreSQL: using the private cluster at $DATABASE_URL"
  fi
  export DATABASE_URL
}

# --- Redis ----------------------------------------------------------------------

redis_answers() { # URL
  command -v redis-cli >/dev/null 2>&1 || return 1
  [ "$(timeout 3 redis-cli -u "$1" ping 2>/dev/null)" = PONG ]
}

# ensure_redis — exports REDIS_URL pointing at a server that answers.
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  if [ -n "${REDIS_URL:-}" ] && redis_answers "$REDIS_URL"; then
    log "Redis: using REDIS_URL"
  elif redis_answers "redis://127.0.0.1:6379"; then
    REDIS_URL="redis://127.0.0.1:6379"
    log "Redis: using the machine's server"
  else
    local port=${PRIVATE_REDIS_PORT:-56379}
    REDIS_URL="redis://127.0.0.1:$port"
    if ! redis_answers "$REDIS_URL"; then
      mkdir -p "$DATA_DIR/redis"
      log "Redis: starting a private server on 127.0.0.1:$port"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$DATA_DIR/redis" --logfile "$DATA_DIR/redis/server.log" \
        --pidfile "$DATA_DIR/redis/redis.pid" >/dev/null || die "redis-server did not start"
      for _ in $(seq 1 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
      redis_answers "$REDIS_URL" || die "Redis at $REDIS_URL does not answer"
    fi
  fi
  export REDIS_URL
}

# ensure_nats — exports NATS_URL pointing at a NATS server with JetStream that answers: NATS_URL
# when it answers, else the machine's at 127.0.0.1:4222, else a private one (Debian's
# nats-server, installed when missing) with its store under $DATA_DIR/nats.
ensure_nats() {
  local answers='u=${0#nats://}; exec 3<>"/dev/tcp/${u%:*}/${u##*:}" && head -c 4 <&3 | grep -q INFO'
  if [ -n "${NATS_URL:-}" ] && timeout 2 bash -c "$answers" "$NATS_URL" 2>/dev/null; then
    log "NATS: using NATS_URL"
  elif timeout 2 bash -c "$answers" "nats://127.0.0.1:4222" 2>/dev/null; then
    NATS_URL="nats://127.0.0.1:4222"
    log "NATS: using the machine's server"
  else
    command -v nats-server >/dev/null 2>&1 || apt_install nats-server
    local port=${PRIVATE_NATS_PORT:-54222}
    NATS_URL="nats://127.0.0.1:$port"
    if ! timeout 2 bash -c "$answers" "$NATS_URL" 2>/dev/null; then
      mkdir -p "$DATA_DIR/nats"
      log "NATS: starting a private server with JetStream on 127.0.0.1:$port"
      nohup nats-server -a 127.0.0.1 -p "$port" -js -sd "$DATA_DIR/nats" \
        -l "$DATA_DIR/nats/server.log" -P "$DATA_DIR/nats/nats.pid" >/dev/null 2>&1 &
      for _ in $(seq 1 50); do timeout 2 bash -c "$answers" "$NATS_URL" 2>/dev/null && break; sleep 0.1; done
      timeout 2 bash -c "$answers" "$NATS_URL" 2>/dev/null || die "NATS at $NATS_URL does not answer"
    fi
  fi
  export NATS_URL
}

# --- nginx ----------------------------------------------------------------------

# ensure_nginx — makes sure Debian's nginx binary is present (not started).
ensure_nginx() {
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    # nginx-light carries every module the gateway uses; releases without the flavours ship nginx.
    (apt_install nginx-light) || apt_install nginx
  fi
  NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
  export NGINX_BIN
}

# --- ElectionGuard reference (Python) --------------------------------------------

python310_bin() {
  local candidate
  if command -v pyenv >/dev/null 2>&1; then
    candidate=$(ls -d "$(pyenv root)"/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  fi
  candidate=$(command -v python3.10 2>/dev/null) || return 1
  echo "$candidate"
}

electionguard_answers() { # PYTHON
  [ -x "$1" ] && "$1" -c 'import importlib.metadata as m, sys; sys.exit(m.version("electionguard") != "1.4.0")' >/dev/null 2>&1
}

# ensure_electionguard — exports ELECTIONGUARD_PYTHON, a Python 3.10 with electionguard 1.4.0
# (the reference the guardian tests check their proofs with), in a venv under .data/.
ensure_electionguard() {
  local venv="$DATA_DIR/venv-electionguard" python
  if [ -n "${ELECTIONGUARD_PYTHON:-}" ] && electionguard_answers "$ELECTIONGUARD_PYTHON"; then
    log "ElectionGuard: using ELECTIONGUARD_PYTHON"
    export ELECTIONGUARD_PYTHON
    return 0
  fi
  if ! electionguard_answers "$venv/bin/python"; then
    python=$(python310_bin) || die "no Python 3.10 (pyenv's 3.10.* or python3.10) for the electionguard reference"
    log "ElectionGuard: creating $venv with $python"
    mkdir -p "$DATA_DIR"
    "$python" -m venv "$venv" || die "python -m venv $venv failed"
    "$venv/bin/python" -m pip install -q electionguard==1.4.0 >/dev/null \
      || die "pip install electionguard==1.4.0 failed"
    electionguard_answers "$venv/bin/python" || die "electionguard 1.4.0 is not importable in $venv"
  fi
  ELECTIONGUARD_PYTHON="$venv/bin/python"
  log "ElectionGuard: using $ELECTIONGUARD_PYTHON"
  export ELECTIONGUARD_PYTHON
}

# --- CloudEvents SDK (Python) ----------------------------------------------------

CLOUDEVENTS_VERSION=2.2.0

cloudevents_answers() { # PYTHON
  [ -x "$1" ] && "$1" -c 'import importlib.metadata as m, sys; sys.exit(m.version("cloudevents") != sys.argv[1])' \
    "$CLOUDEVENTS_VERSION" >/dev/null 2>&1
}

# ensure_cloudevents — exports CLOUDEVENTS_PYTHON, a Python 3 with the `cloudevents` SDK
# (the consumer the event tests parse the feed with), in a venv under .data/.
ensure_cloudevents() {
  local venv="$DATA_DIR/venv-cloudevents"
  if [ -n "${CLOUDEVENTS_PYTHON:-}" ] && cloudevents_answers "$CLOUDEVENTS_PYTHON"; then
    log "CloudEvents: using CLOUDEVENTS_PYTHON"
    export CLOUDEVENTS_PYTHON
    return 0
  fi
  if ! cloudevents_answers "$venv/bin/python"; then
    command -v python3 >/dev/null 2>&1 || die "no python3 for the cloudevents SDK"
    log "CloudEvents: creating $venv with $(command -v python3)"
    mkdir -p "$DATA_DIR"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    "$venv/bin/python" -m pip install -q "cloudevents==$CLOUDEVENTS_VERSION" >/dev/null \
      || die "pip install cloudevents==$CLOUDEVENTS_VERSION failed"
    cloudevents_answers "$venv/bin/python" || die "cloudevents $CLOUDEVENTS_VERSION is not importable in $venv"
  fi
  CLOUDEVENTS_PYTHON="$venv/bin/python"
  log "CloudEvents: using $CLOUDEVENTS_PYTHON"
  export CLOUDEVENTS_PYTHON
}
