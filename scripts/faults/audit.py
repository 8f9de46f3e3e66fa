#!/usr/bin/env python3
"""The audit after one fault: what the load was answered, checked against the database and the API.

Every acknowledged write is a row; every row the fault's load made holds ciphertext in its PII
columns, has exactly one successful `user.create` audit row, reads back through the API with a
valid signature and an intact audit chain; each Idempotency-Key made at most one user; the only
non-2xx answers were 503 with Retry-After (or no answer, while a process was down). Prints one
line with the counts and exits 1 on any violation.
"""

import argparse
import http.client
import json
import subprocess
import sys

PII_COLUMNS = ["sngine_email", "sngine_phone", "first_name", "last_name", "date_of_birth"]


def psql(url, sql):
    out = subprocess.run(
        ["psql", url, "-XAtqc", sql], check=True, capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line]


def get(port, path, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text else None
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fault", required=True)
    parser.add_argument("--tally", required=True, help="load.py's output")
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manager-token", required=True)
    parser.add_argument("--after-id", type=int, required=True, help="the highest user id before the load")
    parser.add_argument("--down-allowed", action="store_true", help="user-svc was down for a while")
    parser.add_argument("--strict-idempotency", action="store_true")
    args = parser.parse_args()

    with open(args.tally, encoding="utf-8") as file:
        tally = json.load(file)
    violations = list(tally["violations"])
    extra = tally["violation_count"] - len(violations)
    if extra > 0:
        violations.append(f"... and {extra} more from the load")

    rows = [int(row) for row in psql(args.db_url, f"SELECT id FROM vottery_users WHERE id > {args.after_id} ORDER BY id")]
    acknowledged = tally["acknowledged"]
    ids = list(acknowledged.values())
    if len(set(ids)) != len(ids):
        violations.append("two Idempotency-Keys were acknowledged with the same user")
    missing = sorted(set(ids) - set(rows))
    if missing:
        violations.append(f"acknowledged users without a row: {missing[:10]}")
    if len(rows) > tally["keys_sent"]:
        violations.append(f"{len(rows)} users from {tally['keys_sent']} keys")

    plain = " OR ".join(f"({column}::text NOT LIKE 'vault:v%')" for column in PII_COLUMNS)
    for row in psql(args.db_url, f"SELECT id FROM vottery_users WHERE id > {args.after_id} AND ({plain})"):
        violations.append(f"user {row}: a PII column is not ciphertext")
    unaudited = psql(
        args.db_url,
        f"SELECT u.id FROM vottery_users u WHERE u.id > {args.after_id} AND (SELECT count(*) FROM "
        "vottery_audit_logs a WHERE a.user_id = u.id AND a.action = 'user.create' AND a.success) <> 1",
    )
    for row in unaudited:
        violations.append(f"user {row}: not exactly one audited creation")

    for user_id in rows:
        status, view = get(args.port, f"/api/users/{user_id}", args.manager_token)
        if status != 200 or not (view or {}).get("signature", {}).get("valid"):
            violations.append(f"user {user_id} reads back {status} {view and view.get('signature')}")
        status, trail = get(args.port, f"/api/users/{user_id}/audit?limit=1", args.manager_token)
        if status != 200 or not (trail or {}).get("chain", {}).get("valid"):
            violations.append(f"user {user_id}'s audit trail reads {status} {trail and trail.get('chain')}")

    if not args.down_allowed and (tally["refused"] or tally["lost"]):
        violations.append(f"{tally['refused']} refused and {tally['lost']} lost answers while user-svc was up")
    if args.strict_idempotency and tally["taken_on_retry"]:
        violations.append(f"{tally['taken_on_retry']} keyed retries answered 409 instead of replayed")
    if not acknowledged:
        violations.append("no write was acknowledged")

    answers = tally["answers"]
    ok = sum(count for status, count in answers.items() if status.startswith("2"))
    print(
        f"{args.fault:<22} writes {tally['keys_sent']:>4}  acknowledged {len(acknowledged):>4}  "
        f"rows {len(rows):>4}  2xx {ok:>5}  503 {answers.get('503', 0):>4}  "
        f"refused {tally['refused']:>3}  lost {tally['lost']:>3}  retried {tally['retried']:>4}  "
        f"replayed {tally['replayed']:>3}  409-on-retry {tally['taken_on_retry']:>3}  "
        f"gave-up {tally['gave_up']:>3}  violations {len(violations)}"
    )
    for violation in violations:
        print(f"  violation: {violation}")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
