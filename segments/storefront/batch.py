"""A batch of pixel events as the storefront sends it, read strictly (pure: no database, no clock of
its own). Anything the pixel would not send is refused with the path of the first problems, and
the whole batch with it: a storefront event is a low-trust signal, so what is stored is only what
was exactly what we expect.

    {"key": "<the shop's ingest key>", "shop": "<shop>.myshopify.com", "analytics": true,
     "events": [{"id", "name", "clientId", "timestamp", "seq", "url", "referrer", "customerId", "data"}]}

`analytics` is the shopper's analytics consent as the pixel read it (the pixel sends nothing without
it; a batch that says otherwise is refused, and stores nothing). A batch comes from one browser:
every event has the same `clientId`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from segments.engine.rules import Problem
from shopseg.errors import Refused
from shopseg.jsonbody import json_object

MAX_BODY_BYTES = 64 * 1024          # a keepalive fetch carries at most 64 KB
MAX_EVENTS = 100
MAX_DATA_KEYS = 16
MAX_TEXT = 256                      # a data value
MAX_URL = 2048
MAX_PROBLEMS = 10
MAX_PAST = dt.timedelta(days=3)     # events replayed after consent arrive late, not days late
MAX_FUTURE = dt.timedelta(minutes=10)

STANDARD_EVENTS = frozenset({
    "page_viewed", "product_viewed", "collection_viewed", "search_submitted", "product_added_to_cart",
    "product_removed_from_cart", "cart_viewed", "checkout_started", "checkout_completed",
})
# A theme's own events, namespaced as Shopify asks (`app:event`): a size finder, a comparison, a video.
CUSTOM_EVENT = re.compile(r"[a-z0-9_]{1,24}:[a-z0-9_]{1,40}")
INGEST_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")       # segments.storefront.models.new_ingest_key's alphabet
EVENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
CLIENT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
DATA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
CUSTOMER_GID = re.compile(r"(?:gid://shopify/Customer/)?([0-9]{1,19})")
SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9\-]*\.myshopify\.com")
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
BATCH_KEYS = {"key", "shop", "analytics", "events"}
EVENT_KEYS = {"id", "name", "clientId", "timestamp", "seq", "url", "referrer", "customerId", "data"}


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    occurred_at: dt.datetime
    seq: int
    url: str
    referrer: str
    customer_shopify_id: int | None
    data: dict


@dataclass(frozen=True)
class Batch:
    key: str
    shop_domain: str
    client_id: str
    events: tuple[Event, ...]


def batch_read(raw: bytes, *, now: dt.datetime) -> Batch:
    """The batch in `raw`, or Refused (413 too large, 400 anything else the pixel would not send)."""
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(413, "payload_too_large", f"A batch is at most {MAX_BODY_BYTES // 1024} KB.")
    body = json_object(raw)
    problems = [Problem(k, "unknown field") for k in sorted(set(body) - BATCH_KEYS)]
    key, shop, events = body.get("key"), body.get("shop"), body.get("events")
    if not _matches(INGEST_KEY, key):
        problems.append(Problem("key", "required: the shop's ingest key"))
    if not (isinstance(shop, str) and SHOP_DOMAIN.fullmatch(shop)):
        problems.append(Problem("shop", "required: the shop's myshopify.com domain"))
    if body.get("analytics") is not True:
        problems.append(Problem("analytics", "must be true: events are sent only with analytics consent"))
    if not (isinstance(events, list) and 0 < len(events) <= MAX_EVENTS):
        problems.append(Problem("events", f"must be a list of 1 to {MAX_EVENTS} events"))
        events = []
    # Strict JSON carries NUL and lone surrogates (text PostgreSQL cannot store) only as \u escapes:
    # without one, no text needs walking for them.
    may_hold_unstorable = b"\\u0000" in raw or SURROGATE_ESCAPE.search(raw) is not None
    read = []
    for i, event in enumerate(events):
        if len(problems) >= MAX_PROBLEMS:
            break
        found = _event_problems(event, f"events[{i}]", now, may_hold_unstorable)
        problems += found
        if not found:
            read.append(event)
    if not problems and len({e["clientId"] for e in read}) > 1:
        problems.append(Problem("events", "every event of a batch must have the same clientId"))
    if problems:
        raise Refused(400, "invalid_batch", "The batch cannot be used: " + "; ".join(map(str, problems[:3])),
                           problems[:MAX_PROBLEMS])
    return Batch(key=key, shop_domain=shop, client_id=read[0]["clientId"],
                 events=tuple(_event(e) for e in read))


def _event_problems(event: object, path: str, now: dt.datetime, may_hold_unstorable: bool = True) -> list[Problem]:
    if not isinstance(event, dict):
        return [Problem(path, "must be an object")]
    problems = [Problem(f"{path}.{k}", "unknown field") for k in sorted(set(event) - EVENT_KEYS)]

    def check(name: str, ok: bool, message: str) -> None:
        if not ok:
            problems.append(Problem(f"{path}.{name}", message))

    name = event.get("name")
    check("id", _matches(EVENT_ID, event.get("id")), "required: the event's id")
    check("name", isinstance(name, str) and (name in STANDARD_EVENTS or bool(CUSTOM_EVENT.fullmatch(name))),
          "must be a standard event the pixel subscribes to, or a custom one named app:event")
    check("clientId", _matches(CLIENT_ID, event.get("clientId")), "required: Shopify's clientId")
    moment = _timestamp(event.get("timestamp"))
    check("timestamp", moment is not None and now - MAX_PAST <= moment <= now + MAX_FUTURE,
          "must be an ISO 8601 time with its offset, within the last 3 days")
    seq = event.get("seq")
    check("seq", type(seq) is int and 0 <= seq < 2**31, "must be a whole number from 0")
    url = event.get("url")
    check("url", isinstance(url, str) and len(url) <= MAX_URL and url.startswith(("https://", "http://")),
          f"must be the page's http(s) address, at most {MAX_URL} characters")
    referrer = event.get("referrer", "")
    check("referrer", isinstance(referrer, str) and len(referrer) <= MAX_URL,
          f"must be text of at most {MAX_URL} characters")
    customer = event.get("customerId")
    check("customerId", customer is None or _matches(CUSTOMER_GID, customer) and _customer_id(customer) < 2**63,
          "must be null or the customer's id (digits, or a Customer gid)")
    data = event.get("data", {})
    check("data", _data_ok(data), f"must be an object of at most {MAX_DATA_KEYS} plain values (text of at most "
                                  f"{MAX_TEXT} characters, numbers, true, false, null)")
    if may_hold_unstorable and _holds_unstorable(event):
        problems.append(Problem(path, "must not contain NUL (\\u0000) or a lone surrogate (\\ud800-\\udfff)"))
    return problems


def _holds_unstorable(value: object) -> bool:
    """Whether any text in `value` holds NUL or a lone surrogate, which PostgreSQL text cannot store
    (walked with a stack of our own: no nesting can exhaust Python's)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not item.isascii() and _lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _customer_id(value: str) -> int:
    return int(CUSTOMER_GID.fullmatch(value).group(1))


def _matches(pattern: re.Pattern, value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _data_ok(data: object) -> bool:
    if not isinstance(data, dict) or len(data) > MAX_DATA_KEYS:
        return False
    for key, value in data.items():
        if not DATA_KEY.fullmatch(key):
            return False
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                return False
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return False
        elif not (value is None or isinstance(value, (bool, int))):
            return False
    return True


def _event(event: dict) -> Event:
    customer = event.get("customerId")
    return Event(event_id=event["id"], name=event["name"], occurred_at=_timestamp(event["timestamp"]),
                 seq=event["seq"], url=event["url"], referrer=event.get("referrer", ""),
                 customer_shopify_id=_customer_id(customer) if customer else None,
                 data=event.get("data", {}))
