#!/usr/bin/env python3
"""A bounded write and read load against user-svc, as a well-behaved client drives it.

Writers create users, each write carrying an Idempotency-Key; on a 503 (or "key in use"), and on
an answer that never came (connection refused, reset or closed while a process is down), the
write is sent again with the same key, a bounded number of times. Readers read the manager
(whose signature must check) and a page of users. Every answer is tallied; the tally is printed
as one JSON object for scripts/faults/audit.py.
"""

import argparse
import http.client
import json
import socket
import threading
import time
import uuid

RETRIES = 24
PAUSE = 0.25


class Client:
    """One keep-alive connection to user-svc over loopback, reopened after a failure."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def send(self, method, path, token, body=None, key=None):
        """Returns (status, headers, json) or raises OSError/HTTPException when no answer came."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.answers = {}
        self.refused = 0
        self.lost = 0
        self.acknowledged = {}
        self.keys_sent = 0
        self.retried = 0
        self.replayed = 0
        self.taken_on_retry = 0
        self.gave_up = 0
        self.violations = []

    def answered(self, status):
        self.answers[str(status)] = self.answers.get(str(status), 0) + 1

    def as_json(self):
        return {
            "answers": self.answers,
            "refused": self.refused,
            "lost": self.lost,
            "acknowledged": self.acknowledged,
            "keys_sent": self.keys_sent,
            "retried": self.retried,
            "replayed": self.replayed,
            "taken_on_retry": self.taken_on_retry,
            "gave_up": self.gave_up,
            "violations": self.violations[:20],
            "violation_count": len(self.violations),
        }


def no_answer(tally, error):
    """Counts an answer that never came: refused (nothing sent) or lost (sent, no reply)."""
    refused = isinstance(error, ConnectionRefusedError)
    with tally.lock:
        if refused:
            tally.refused += 1
        else:
            tally.lost += 1


def retry_pause(headers):
    try:
        return min(float(headers.get("retry-after", PAUSE)), 1.0)
    except ValueError:
        return PAUSE


def write_one(client, args, tally, key, body):
    with tally.lock:
        tally.keys_sent += 1
    for attempt in range(RETRIES + 1):
        if attempt:
            with tally.lock:
                tally.retried += 1
        try:
            status, headers, reply = client.send("POST", "/api/users", args.service_token, body, key)
        except (OSError, http.client.HTTPException) as error:
            no_answer(tally, error)
            time.sleep(PAUSE)
            continue
        kind = (reply or {}).get("type", "") if isinstance(reply, dict) else ""
        retry_later = status == 503 or kind.endswith("idempotency-key-in-use")
        with tally.lock:
            tally.answered(status)
            if status == 201:
                tally.replayed += headers.get("idempotent-replayed") == "true"
                tally.acknowledged[key] = reply.get("id")
                return
            if retry_later and "retry-after" not in headers:
                tally.violations.append(f"write {key}: {status} without Retry-After")
                return
            if not retry_later:
                if status == 409 and attempt:
                    tally.taken_on_retry += 1
                else:
                    tally.violations.append(f"write {key}: {status} {reply}")
                return
        time.sleep(retry_pause(headers))
    with tally.lock:
        tally.gave_up += 1


def writer(args, tally, deadline, index):
    client = Client(args.port)
    for n in range(args.writes_per_writer):
        if time.monotonic() > deadline:
            return
        serial = index * 1000 + n
        key = f"{args.run}-{serial}"
        body = {
            "sngine_email": f"{key}@faults.example.com",
            "sngine_phone": f"+1415{args.phone_block:03d}{serial % 10000:04d}",
            "first_name": "Grace",
        }
        write_one(client, args, tally, key, body)


def reader(args, tally, deadline, index):
    client = Client(args.port)
    round_ = index
    while time.monotonic() < deadline:
        path = f"/api/users/{args.manager_id}" if round_ % 2 == 0 else "/api/users?limit=5"
        round_ += 1
        try:
            status, headers, reply = client.send("GET", path, args.manager_token)
        except (OSError, http.client.HTTPException) as error:
            no_answer(tally, error)
            time.sleep(PAUSE)
            continue
        with tally.lock:
            tally.answered(status)
            if status == 200 and path.startswith("/api/users/"):
                if not (reply or {}).get("signature", {}).get("valid"):
                    tally.violations.append(f"GET {path}: signature {reply.get('signature')}")
            elif status == 503:
                if "retry-after" not in headers:
                    tally.violations.append(f"GET {path}: 503 without Retry-After")
            elif status != 200:
                tally.violations.append(f"GET {path}: {status} {reply}")
        if status == 503:
            time.sleep(retry_pause(headers))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-token", required=True)
    parser.add_argument("--manager-token", required=True)
    parser.add_argument("--manager-id", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--writes-per-writer", type=int, default=150)
    parser.add_argument("--phone-block", type=int, default=0, help="a distinct 0-999 per run")
    parser.add_argument("--run", default=uuid.uuid4().hex[:8], help="prefix of keys and emails")
    args = parser.parse_args()
    socket.setdefaulttimeout(30)

    tally = Tally()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=writer, args=(args, tally, deadline, i)) for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(args, tally, deadline, i)) for i in range(args.readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(tally.as_json()))


if __name__ == "__main__":
    main()
