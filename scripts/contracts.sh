#!/usr/bin/env bash
# Checks that the OpenAPI documents state the rules the services apply:
#   1. a Python client generated (openapi-python-client) from each checked-in document covers
#      every operation: any generator warning (a skipped operation, a schema it cannot read)
#      fails the run;
#   2. create keys and encrypt through the generated security-svc client against a running
#      instance, and create and read a user through the generated user-svc client;
#   3. schemathesis against the instance's served /openapi.json: no server errors, every
#      status, content type and body as documented, and no operation whose generated data is
#      mostly refused;
#   4. the same against a user-svc on that security-svc, as its bootstrap manager.
# The instances (target/debug/security-svc and target/debug/user-svc, or SECURITY_SVC_BIN and
# USER_SVC_BIN) run on their own database on the PostgreSQL at DATABASE_URL, security-svc
# auto-unsealed from a development root key; everything started here is stopped and the
# database dropped on exit.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
# shellcheck source=lib/provision.sh
. scripts/lib/provision.sh
# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh

VENV=$DATA_DIR/venv-contracts
CLIENT_GENERATOR=openapi-python-client==0.29.1
SCHEMATHESIS=schemathesis==4.32.5
SECURITY_SVC_BIN=${SECURITY_SVC_BIN:-$ROOT_DIR/target/debug/security-svc}
USER_SVC_BIN=${USER_SVC_BIN:-$ROOT_DIR/target/debug/user-svc}
ADMIN_TOKEN=contracts-admin-token-$RANDOM$RANDOM$RANDOM
# Left out: the operations that change the seal state (init, unseal, seal, rekey,
# generate-root), and the guardian steps whose bodies are ElectionGuard group elements and
# proofs, which generated data cannot hit.
EXCLUDED_ROUTES='^/v1/sys/(init|unseal|seal|rekey|generate-root)(/.*)?$|^/v1/guardians/[^/]+/(backups|verifications|decrypt|compensate)$'
MAX_EXAMPLES=${CONTRACTS_MAX_EXAMPLES:-25}

WORK_DIR=$(mktemp -d)
DATABASE=vottery_contracts_$$
ADMIN_URL=""

finish() {
  stop_stack
  [ -n "$ADMIN_URL" ] && drop_database "$ADMIN_URL" "$DATABASE" || true
  rm -rf "$WORK_DIR"
}
trap finish EXIT INT TERM

# contract_tools_answer — the venv holds the pinned client generator and schemathesis.
contract_tools_answer() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$CLIENT_GENERATOR" "$SCHEMATHESIS" <<'PYTHON' 2>/dev/null
import importlib.metadata as metadata, sys
sys.exit(any(metadata.version(name) != version for name, version in (pin.split("==") for pin in sys.argv[1:])))
PYTHON
}

# ensure_contract_tools — the venv with the pinned client generator and schemathesis.
ensure_contract_tools() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  contract_tools_answer && return 0
  log "creating $VENV with $CLIENT_GENERATOR and $SCHEMATHESIS"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  "$VENV/bin/python" -m pip install -q "$CLIENT_GENERATOR" "$SCHEMATHESIS" >/dev/null ||
    die "pip install $CLIENT_GENERATOR $SCHEMATHESIS failed"
  contract_tools_answer || die "$CLIENT_GENERATOR and $SCHEMATHESIS are not installed in $VENV"
}

# generate_client DOCUMENT PACKAGE [CONFIG] — generates the client into $WORK_DIR/PACKAGE and
# prints the generator's warnings.
generate_client() {
  local config=()
  [ -z "${3:-}" ] || config=(--config "$3")
  "$VENV/bin/openapi-python-client" generate --path "$1" --meta none "${config[@]}" \
    --output-path "$WORK_DIR/$2" --overwrite 2>&1 | grep -A3 '^WARNING' || true
  [ -f "$WORK_DIR/$2/client.py" ] || die "no client was generated from $1"
}

# skipped_operations WARNINGS — the operations the generator left out, one a line.
skipped_operations() {
  grep 'Endpoint will not be generated' <<<"$1" | sed 's/^WARNING parsing \(.*\) within .*/\1/' || true
}

check_clients() {
  local warnings skipped
  log "generating the security-svc client"
  warnings=$(generate_client services/security-svc/openapi.json security_svc_client)
  skipped=$(skipped_operations "$warnings")
  [ -z "$skipped" ] || die "the security-svc client skips operations:"$'\n'"$skipped"
  [ -z "$warnings" ] || die "generating the security-svc client warns:"$'\n'"$warnings"
  log "security-svc: every operation is in the generated client"
  log "generating the user-svc client"
  # Time zone names such as GMT0 and GMT-0 make the same Python name: the enums are literals.
  printf 'literal_enums: true\n' >"$WORK_DIR/user-client.yml"
  warnings=$(generate_client services/user-svc/openapi.json user_svc_client "$WORK_DIR/user-client.yml")
  skipped=$(skipped_operations "$warnings")
  [ -z "$skipped" ] || die "the user-svc client skips operations:"$'\n'"$skipped"
  [ -z "$warnings" ] || die "generating the user-svc client warns:"$'\n'"$warnings"
  log "user-svc: every operation is in the generated client"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# env_value FILE KEY — KEY's value in a deploy/env file.
env_value() {
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

# start_security_svc — an instance on its own database, unsealed, serving at SECURITY_URL.
start_security_svc() {
  local key=$WORK_DIR/root.key port
  [ -x "$SECURITY_SVC_BIN" ] || die "no $SECURITY_SVC_BIN: build it first (cargo build -p security-svc)"
  ADMIN_URL=$DATABASE_URL
  drop_database "$ADMIN_URL" "$DATABASE"
  ensure_database "$ADMIN_URL" "$DATABASE"
  export DATABASE_URL
  DATABASE_URL=$(database_url "$ADMIN_URL" "$DATABASE")
  export SECURITY_SVC__LOG__FILTER=warn
  # user-svc's transit keys and token, as deploy/env configures them.
  SECURITY_SVC__TRANSIT__BOOTSTRAP_KEYS=$(env_value deploy/env/security-svc.env SECURITY_SVC__TRANSIT__BOOTSTRAP_KEYS)
  SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET=$(env_value deploy/env/user-svc.env USER_SVC__SECURITY__TOKEN)
  export SECURITY_SVC__TRANSIT__BOOTSTRAP_KEYS SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET
  (umask 077 && security_svc operator init --shares 1 --threshold 1 --root-key-file "$key" >/dev/null) ||
    die "security-svc operator init failed"
  port=$(free_port)
  SECURITY_URL=http://127.0.0.1:$port
  export SECURITY_SVC__APPLICATION__HOST=127.0.0.1 SECURITY_SVC__APPLICATION__PORT=$port \
    SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE=$key SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET=$ADMIN_TOKEN
  start_background security-svc "$WORK_DIR/security-svc.log" security_svc
  wait_http "$SECURITY_URL/health/ready" "$STARTED_PID" security-svc "$WORK_DIR/security-svc.log"
}

# call_through_client — creates the transit keys schemathesis signs and encrypts with, and
# encrypts, destroys a context and is refused its value through the generated client; prints
# the ciphertext.
call_through_client() {
  log "security-svc: create keys and encrypt through the generated client"
  PYTHONPATH=$WORK_DIR "$VENV/bin/python" - "$SECURITY_URL" "$ADMIN_TOKEN" <<'PYTHON' ||
import sys
from security_svc_client import AuthenticatedClient
from security_svc_client.api.keys import configure_key, create_key, destroy_context
from security_svc_client.api.transit import decrypt, encrypt
from security_svc_client.models import (CreateKeyRequest, DecryptRequest, DestroyContextRequest,
                                        EncryptRequest, KeyConfigRequest, KeyType)

url, token = sys.argv[1:]
client = AuthenticatedClient(base_url=url, token=token)
keys = [("contracts-aes", KeyType.AES256_GCM96, False), ("contracts-ed25519", KeyType.ED25519, False),
        ("contracts-trim", KeyType.AES256_GCM96, False), ("contracts-contexts", KeyType.AES256_GCM96, True)]
for name, key_type, context_keys in keys:
    body = CreateKeyRequest(type_=key_type, context_keys=context_keys)
    created = create_key.sync_detailed(name, client=client, body=body)
    assert created.status_code == 200, created
configured = configure_key.sync_detailed("contracts-trim", client=client, body=KeyConfigRequest(min_encryption_version=1))
assert configured.status_code == 200, configured
answer = encrypt.sync("contracts-aes", client=client, body=EncryptRequest(plaintext="aGVsbG8="))
ciphertext = answer.data.ciphertext
assert ciphertext.startswith("vault:v1:"), answer
# Crypto-shredding: a value under a context whose data key is destroyed never opens again.
context = "c3ViamVjdC0x"
shredded = encrypt.sync("contracts-contexts", client=client, body=EncryptRequest(plaintext="aGVsbG8=", context=context))
destroyed = destroy_context.sync_detailed("contracts-contexts", client=client, body=DestroyContextRequest(context=context))
assert destroyed.status_code == 200 and destroyed.parsed.data.destroyed, destroyed
refused = decrypt.sync_detailed("contracts-contexts", client=client,
                                body=DecryptRequest(ciphertext=shredded.data.ciphertext, context=context))
assert refused.status_code == 400 and b"context destroyed" in refused.content, refused
print(ciphertext)
PYTHON
    die "the call through the generated security-svc client failed"
}

# schemathesis_config CIPHERTEXT — generated data the service mostly refuses fails the run.
# The transit data routes, trim and context destruction name the keys call_through_client made (a random name is
# refused, as Vault refuses it); decrypt and rewrap are also sent its ciphertext. Whether a
# ciphertext opens (only under the key that made it) and whether a key may be trimmed or
# deleted (its versions and configuration) is state, not the request: refusals there are no
# sign of a loose document, so those operations are left out of that warning.
# /v1/sys/health answers whatever status its overrides ask for, 5xx included.
schemathesis_config() {
  cat <<TOML
warnings = { fail-on = ["validation_mismatch"] }

[[operations]]
include-path-regex = "^/v1/transit/(decrypt|rewrap)/"
parameters = { "path.name" = "contracts-aes", "body.ciphertext" = "$1", "body.associated_data" = "", "body.context" = "" }
warnings = false

[[operations]]
include-path-regex = "^/v1/transit/(encrypt|datakey/[^/]+|hmac)/"
parameters = { "path.name" = "contracts-aes" }

[[operations]]
include-path-regex = "^/v1/transit/keys/[^/]+/trim$"
parameters = { "path.name" = "contracts-trim" }
warnings = false

[[operations]]
include-path-regex = "^/v1/transit/(sign|verify|export/[^/]+)/"
parameters = { "path.name" = "contracts-ed25519" }

[[operations]]
include-path-regex = "^/v1/transit/keys/[^/]+/contexts/destroy$"
parameters = { "path.name" = "contracts-contexts" }

[[operations]]
include-path = "/v1/transit/keys/{name}"
include-method = "DELETE"
warnings = false

[[operations]]
include-path = "/v1/sys/health"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "5XX"]
TOML
}

# run_schemathesis CIPHERTEXT — one worker: with two, hypothesis parses its sources from both
# threads at once, and CPython 3.11's parser then fails with "AST constructor recursion depth
# mismatch" (a race in the interpreter, not an answer of the service).
run_schemathesis() {
  log "schemathesis against $SECURITY_URL/openapi.json ($MAX_EXAMPLES examples per operation)"
  schemathesis_config "$1" >"$WORK_DIR/schemathesis.toml"
  (cd "$WORK_DIR" && "$VENV/bin/st" --config-file schemathesis.toml --no-color run "$SECURITY_URL/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path-regex "$EXCLUDED_ROUTES" \
    --header "X-Vault-Token: $ADMIN_TOKEN" \
    --max-examples "$MAX_EXAMPLES" --workers 1 --seed 12 --generation-database none \
    --report-dir schemathesis-report) >"$WORK_DIR/schemathesis.txt" 2>&1 || {
    cat "$WORK_DIR/schemathesis.txt" >&2
    die "schemathesis found responses the document does not describe, or data it admits mostly refused"
  }
  sed -n '/=== WARNINGS ===/,$p' "$WORK_DIR/schemathesis.txt" >&2
}

# start_user_svc — user-svc on security-svc's database and keys, serving at USER_URL, with a
# bootstrap manager whose development JWT is left in MANAGER_JWT. Rate limiting is off: a 429
# for most generated requests would leave the rest of each operation untested.
start_user_svc() {
  local port manager
  [ -x "$USER_SVC_BIN" ] || die "no $USER_SVC_BIN: build it first (cargo build -p user-svc)"
  load_env_file deploy/env/user-svc.env
  port=$(free_port)
  USER_URL=http://127.0.0.1:$port
  export USER_SVC__APPLICATION__HOST=127.0.0.1 USER_SVC__APPLICATION__PORT=$port \
    USER_SVC__DATABASE__URL=$DATABASE_URL USER_SVC__SECURITY__URL=$SECURITY_URL \
    USER_SVC__LOG__FILTER=warn USER_SVC__RATE_LIMIT__ENABLED=false
  user_svc migrate >>"$WORK_DIR/user-svc.log" 2>&1 || die "user-svc migrate failed; see $WORK_DIR/user-svc.log"
  manager=$(bootstrap_manager_once "$WORK_DIR/manager.id" contracts-manager@example.com +14155550100 \
    "$DATABASE_URL" "$WORK_DIR/user-svc.log")
  MANAGER_JWT=$(user_svc issue-dev-token "$manager" --ttl 3600 2>>"$WORK_DIR/user-svc.log") ||
    die "user-svc issue-dev-token failed"
  start_background user-svc "$WORK_DIR/user-svc.log" user_svc serve
  wait_http "$USER_URL/health/ready" "$STARTED_PID" user-svc "$WORK_DIR/user-svc.log"
}

# call_user_svc_through_client — creates a user and reads them back through the generated
# user-svc client, as the bootstrap manager, and creates two more; prints the three ids.
call_user_svc_through_client() {
  log "user-svc: create and read a user through the generated client"
  PYTHONPATH=$WORK_DIR "$VENV/bin/python" - "$USER_URL" "$MANAGER_JWT" <<'PYTHON' ||
import sys
from user_svc_client import AuthenticatedClient
from user_svc_client.api.users import create_user, get_user
from user_svc_client.models import CreateUser, UserView

url, token = sys.argv[1:]
client = AuthenticatedClient(base_url=url, token=token)
body = CreateUser(sngine_email="client.user@example.com", sngine_phone="+14155550177",
                  first_name="Client", country="DE", timezone="Europe/Berlin")
created = create_user.sync_detailed(client=client, body=body)
assert created.status_code == 201 and isinstance(created.parsed, UserView), created
read = get_user.sync(created.parsed.id, client=client)
assert isinstance(read, UserView), read
assert (read.first_name, read.country, read.timezone) == ("Client", "DE", "Europe/Berlin"), read
assert read.signature.valid, read
# Two more users, for the operations that delete one.
doomed = [create_user.sync(client=client, body=CreateUser(sngine_email=f"doomed.{n}@example.com",
                                                           sngine_phone=f"+1415555018{n}"))
          for n in (1, 2)]
assert all(isinstance(user, UserView) for user in doomed), doomed
print(read.id, *(user.id for user in doomed))
PYTHON
    die "the calls through the generated user-svc client failed"
}

# seed_session USER_ID — a device and an active session of the user, as the customer's
# auth-service writes them; prints the session's id.
seed_session() {
  psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 <<SQL || die "cannot write a session for user $1"
WITH device AS (
  INSERT INTO vottery_devices (user_id, device_fingerprint, device_type)
  VALUES ($1, 'contracts-device', 'desktop') RETURNING id)
INSERT INTO vottery_sessions (user_id, device_id, session_token, refresh_token, expires_at,
  refresh_expires_at)
SELECT $1, id, 'contracts-session', 'contracts-refresh', now() + interval '1 day',
  now() + interval '30 days' FROM device RETURNING id;
SQL
}

# user_schemathesis_config USER_ID SESSION_ID DELETED_ID ERASED_ID — generated data user-svc
# mostly refuses fails the run. A generated id names nobody (404), so the operations on one user
# name USER_ID, made through the client, and ending one session names its SESSION_ID. Deleting and
# erasing name users of their own: after the first success they find no one, which is state,
# not the request.
user_schemathesis_config() {
  cat <<TOML
warnings = { fail-on = ["validation_mismatch"] }

[[operations]]
include-path-regex = '^/api/users/\{id\}/(profile|status|role|audit|devices|export|sessions)$'
parameters = { "path.id" = $1 }

[[operations]]
include-path = "/api/users/{id}"
include-method = "GET"
parameters = { "path.id" = $1 }

[[operations]]
include-path = "/api/users/{id}/sessions/{session_id}"
parameters = { "path.id" = $1, "path.session_id" = $2 }

[[operations]]
include-path = "/api/users/{id}"
include-method = "DELETE"
parameters = { "path.id" = $3 }
warnings = ["validation_mismatch"]

[[operations]]
include-path = "/api/users/{id}/erase"
parameters = { "path.id" = $4 }
warnings = ["validation_mismatch"]
TOML
}

# user_schemathesis_hooks — a key names one intended change, and one reused with another body is
# refused by design (422): every valid key the fuzzer sends (it draws them from a small space, and
# its coverage phase sends one key with hundreds of bodies) is made unique before the call. Keys
# the document does not admit are sent as drawn. The header's rules are tested in user-svc's suite.
user_schemathesis_hooks() {
  cat <<'PYTHON'
import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
VALID = re.compile(r'^([!#-\[\]-~]{1,255}|"([ !#-\[\]-~]|\\["\\]){1,255}")$')


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    key = (case.headers or {}).get(HEADER)
    if isinstance(key, str) and VALID.match(key):
        case.headers[HEADER] = str(uuid.uuid4())
PYTHON
}

# run_user_schemathesis — every answer user-svc gives the generated requests is documented, and
# none is a server error. The list operation runs without the coverage phase, whose value
# walker fails inside hypothesis 6 on that operation's query schema (a tool error, not an answer).
run_user_schemathesis() {
  log "schemathesis against $USER_URL/openapi.json ($MAX_EXAMPLES examples per operation)"
  user_schemathesis_config "$@" >"$WORK_DIR/user-schemathesis.toml"
  user_schemathesis_hooks >"$WORK_DIR/user_schemathesis_hooks.py"
  : >"$WORK_DIR/user-schemathesis.txt"
  local selection
  for selection in "--exclude-operation-id list_users" \
    "--include-operation-id list_users --phases examples,fuzzing"; do
    # shellcheck disable=SC2086 # the selection is two options and their values
    (cd "$WORK_DIR" && PYTHONPATH=$WORK_DIR SCHEMATHESIS_HOOKS=user_schemathesis_hooks \
      "$VENV/bin/st" --config-file user-schemathesis.toml --no-color run "$USER_URL/openapi.json" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --header "Authorization: Bearer $MANAGER_JWT" $selection \
      --max-examples "$MAX_EXAMPLES" --workers 1 --seed 12 --generation-database none \
      --report-dir user-schemathesis-report) >>"$WORK_DIR/user-schemathesis.txt" 2>&1 || {
      cat "$WORK_DIR/user-schemathesis.txt" >&2
      tail -n 40 "$WORK_DIR/user-svc.log" >&2 || true
      die "schemathesis found user-svc responses the document does not describe, or data it admits mostly refused"
    }
  done
  sed -n '/=== WARNINGS ===/,$p' "$WORK_DIR/user-schemathesis.txt" >&2
}

ensure_postgres
command -v curl >/dev/null 2>&1 || apt_install curl
ensure_contract_tools
check_clients
start_security_svc
ciphertext=$(call_through_client)
run_schemathesis "$ciphertext"
start_user_svc
read -r target deleted erased <<<"$(call_user_svc_through_client)"
run_user_schemathesis "$target" "$(seed_session "$target")" "$deleted" "$erased"
log "contracts: passed"
