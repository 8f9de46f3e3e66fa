"""Checks user-svc's events with the CloudEvents SDK.

Reads a JSON array of events (the `events` of one or more `GET /api/events` pages) on stdin,
parses each in structured JSON mode with the `cloudevents` package and checks what Vottery
promises of it. Exits 1 naming the first malformed event and what is wrong with it; on success
prints one JSON line with the count of each type.
"""

import json
import re
import sys
import uuid
from collections import Counter

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

SOURCE = "/vottery/user-svc"
TYPES = {
    f"dev.vottery.user.{suffix}"
    for suffix in (
        "created",
        "profile_changed",
        "status_changed",
        "role_changed",
        "deleted",
        "sessions_revoked",
    )
}
REQUIRED = ("id", "source", "type", "subject", "time", "datacontenttype", "data")
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


class Malformed(Exception):
    pass


def check(raw: dict) -> str:
    """The type of `raw` once every promise about it holds; raises Malformed otherwise."""
    if not isinstance(raw, dict):
        raise Malformed("it is not a JSON object")
    if raw.get("specversion") != "1.0":
        raise Malformed(f"specversion is {raw.get('specversion')!r}, not '1.0'")
    missing = [name for name in REQUIRED if raw.get(name) is None]
    if missing:
        raise Malformed(f"it has no {', '.join(missing)}")
    try:
        event = JSONFormat().read(CloudEvent, json.dumps(raw))
    except Exception as error:
        raise Malformed(f"the cloudevents SDK refuses it: {error}") from error

    try:
        version = uuid.UUID(event.get_id()).version
    except (ValueError, TypeError):
        version = None
    if version != 7:
        raise Malformed(f"id {event.get_id()!r} is not a UUIDv7")
    if event.get_source() != SOURCE:
        raise Malformed(f"source is {event.get_source()!r}, not {SOURCE!r}")
    if event.get_type() not in TYPES:
        raise Malformed(f"type {event.get_type()!r} is not one of {sorted(TYPES)}")
    time = raw.get("time")
    if not isinstance(time, str) or not RFC3339.match(time) or event.get_time() is None:
        raise Malformed(f"time {time!r} is not RFC 3339")
    if event.get_datacontenttype() != "application/json":
        raise Malformed(
            f"datacontenttype is {event.get_datacontenttype()!r}, not 'application/json'"
        )
    data = event.get_data()
    if not isinstance(data, dict):
        raise Malformed(f"data is {type(data).__name__}, not an object")
    user_id = data.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise Malformed(f"data.user_id is {user_id!r}, not a user id")
    if event.get_subject() != str(user_id):
        raise Malformed(
            f"subject is {event.get_subject()!r}, not the user id {str(user_id)!r}"
        )
    return event.get_type()


def main() -> int:
    try:
        events = json.load(sys.stdin)
    except json.JSONDecodeError as error:
        print(f"stdin is not JSON: {error}", file=sys.stderr)
        return 1
    if not isinstance(events, list):
        print("stdin is not a JSON array of events", file=sys.stderr)
        return 1
    counts: Counter = Counter()
    for index, raw in enumerate(events):
        try:
            counts[check(raw)] += 1
        except Malformed as error:
            name = raw.get("id") if isinstance(raw, dict) else None
            print(
                f"event {index} (id {name!r}) is malformed: {error}: {json.dumps(raw)}",
                file=sys.stderr,
            )
            return 1
    print(json.dumps(dict(sorted(counts.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
