#!/usr/bin/env bash
# Runs the README's guardians walkthrough as written: the sh blocks between
# `<!-- walkthrough: guardians -->` and `<!-- /walkthrough -->`, in a scratch directory, with the
# built security-svc on PATH (SECURITY_SVC_BIN_DIR, default target/debug) and PG pointing at the
# server DATABASE_URL names. Passes when the tally decrypts to 3; stops every instance it
# started and drops their databases either way.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=../lib/provision.sh
. scripts/lib/provision.sh

BIN_DIR=${SECURITY_SVC_BIN_DIR:-$ROOT_DIR/target/debug}
[ -x "$BIN_DIR/security-svc" ] || die "no security-svc in $BIN_DIR: build it first"
ensure_postgres
command -v jq >/dev/null 2>&1 || apt_install jq
command -v curl >/dev/null 2>&1 || apt_install curl
PG=${DATABASE_URL%/*}
for port in 8201 8202 8203; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    die "port $port is taken: the walkthrough's guardians listen on 8201-8203"
  fi
done

scratch=$(mktemp -d)
finish() {
  local pid_file
  for pid_file in "$scratch"/*.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  sleep 0.5
  for i in 1 2 3; do
    psql -q "$PG/postgres" -c "drop database if exists guardian_$i" >/dev/null 2>&1 || true
  done
  rm -rf "$scratch"
}
trap finish EXIT INT TERM

awk '/<!-- walkthrough: guardians -->/ { on = 1; next }
     /<!-- \/walkthrough -->/ { on = 0 }
     on && /^```/ { block = !block; next }
     on && block' README.md >"$scratch/walkthrough.sh"
[ -s "$scratch/walkthrough.sh" ] || die "README.md has no guardians walkthrough"

log "the README's guardians walkthrough ($(wc -l <"$scratch/walkthrough.sh") lines)"
(
  cd "$scratch"
  PATH="$BIN_DIR:$PATH" PG=$PG timeout 300 bash -euo pipefail walkthrough.sh >output.txt ||
    { tail -n 20 output.txt guardian-*.log >&2 || true; die "the walkthrough failed"; }
)
result=$(tail -n 1 "$scratch/output.txt")
[ "$result" = 3 ] || die "the walkthrough's tally decrypted to '$result', not 3"
log "walkthrough: the tally of 1,0,1,1 decrypted to $result with two of three guardians"
