"""Processing recorded deliveries in a worker, idempotently: drains take a lane of the pending ones
in fair batches across shops, apply runs of order deliveries together, and retry failures with backoff."""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone

from segments.mirror.cause import dirty_cause
from shopseg.retries import backoff
from webhooks.handlers import HANDLERS, RUN_HANDLERS, TIMED
from webhooks.models import EventStatus, WebhookEvent

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Deliveries per drain transaction. A shop's delivery that arrives while a batch is being applied
# waits for it: with a shop's consecutive orders applied as one run, 100 take about a tenth of a
# second (25 applied one by one took a quarter), and fewer statements and commits per delivery
# leave more of two cores to everything else (BENCHMARKS.md, "Accepted and applied").
DRAIN_BATCH = 100


def _handle(event: WebhookEvent) -> None:
    if event.topic in TIMED:   # e.g. when an uninstall happened decides whether a reinstall came after it
        HANDLERS[event.topic](event.shop_domain, event.payload, occurred_at=event.triggered_at or event.received_at)
    else:
        HANDLERS[event.topic](event.shop_domain, event.payload)


# (shop, API version, deprecation reason) -> when this process last warned about it
_API_WARNED: dict[tuple[str, str, str], float] = {}
API_WARN_EVERY = 3600.0   # seconds: a shop's deliveries in another version warn once an hour, not each


def _api_notice(event: WebhookEvent) -> None:
    """Warn the operator when a delivery's API version is not the app's pinned one, or Shopify marks
    it deprecated (X-Shopify-API-Deprecated-Reason): the payload may be shaped differently from what
    the parsers expect. Shop, topic, versions and Shopify's reason only; nothing from the payload.
    mirror_status counts them (webhooks.health.webhook_api_versions)."""
    pinned = settings.SHOPIFY_API_VERSION
    other = bool(event.api_version) and event.api_version != pinned
    if not other and not event.api_deprecated_reason:
        return
    key = (event.shop_domain, event.api_version, event.api_deprecated_reason)
    now = time.monotonic()
    if now - _API_WARNED.get(key, -API_WARN_EVERY) < API_WARN_EVERY:
        return
    _API_WARNED[key] = now
    log.warning("webhook %s for %s arrived in API version %s, the app is pinned to %s%s", event.topic,
                event.shop_domain, event.api_version or "(none)", pinned,
                f"; Shopify says it is deprecated: {event.api_deprecated_reason}" if event.api_deprecated_reason
                else "")


def _process_locked(event: WebhookEvent) -> str:
    """Run the handler for an event the caller has locked; record the outcome on the row."""
    _api_notice(event)
    event.attempts += 1
    try:
        # a failing handler rolls back its own writes only; customers it dirties name the topic
        with transaction.atomic(), dirty_cause(event.topic):
            _handle(event)
    except Exception as exc:  # recorded and retried with backoff; FAILED after MAX_ATTEMPTS
        event.last_error = f"{type(exc).__name__}: {str(exc)[:500]}"
        event.next_attempt_at = timezone.now() + dt.timedelta(seconds=backoff(event.attempts, base=1.0, cap=3600.0))
        if event.attempts >= MAX_ATTEMPTS:
            event.status = EventStatus.FAILED
        event.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
        log.warning("webhook %s (%s) failed attempt %d: %s", event.webhook_id, event.topic, event.attempts,
                    type(exc).__name__)
        return "failed"
    event.status, event.processed_at, event.last_error = EventStatus.PROCESSED, timezone.now(), ""
    event.save(update_fields=["attempts", "status", "processed_at", "last_error"])
    return "processed"


# Their handlers set the customer's or shop's other pending deliveries aside (ignored, emptied).
SETS_OTHERS_ASIDE = frozenset({"customers/redact", "shop/redact"})
UNREADABLE = (ValueError, RecursionError)   # json.loads of a payload PostgreSQL accepted: >4,300 digits, deep nesting


def _unreadable(pk: int, exc: Exception) -> str:
    """A payload Python cannot read fails its event for good, instead of every drain that loads it."""
    WebhookEvent.objects.filter(pk=pk).update(status=EventStatus.FAILED, attempts=F("attempts") + 1,
                                              last_error=f"payload unreadable: {type(exc).__name__}")
    log.warning("webhook event %d failed: its payload cannot be read (%s)", pk, type(exc).__name__)
    return "failed"


def _read_one(pk: int) -> WebhookEvent | None:
    try:
        return WebhookEvent.objects.filter(pk=pk, status=EventStatus.PENDING).first()
    except UNREADABLE as exc:
        _unreadable(pk, exc)
        return None


def webhook_event_process(*, event_pk: int) -> str:
    """Run the topic's handler once; safe to call twice, from any number of workers."""
    with transaction.atomic():
        try:
            event = (WebhookEvent.objects.select_for_update(skip_locked=True)
                     .filter(pk=event_pk, status=EventStatus.PENDING).first())
        except UNREADABLE as exc:
            return _unreadable(event_pk, exc)
        if event is None:
            return "skipped"  # processed already, ignored, or another worker holds it
        return _process_locked(event)


# About `size` due deliveries, locked, taken evenly across shops: each shop's oldest `size / shops`
# (at least one), so one shop's burst of thousands delays another shop's delivery by one batch, not
# by the whole burst. The shops are found by skipping through the pending index one shop at a time
# (a loose index scan), not by reading every pending row. Each shop's rows are locked as they are
# picked, skipping rows another drain holds. (Many shops at once make a batch of one delivery per shop.)
#
# Each of the `drains` drains takes its own lane: the deliveries whose customer key falls in it
# (no customer: lane 0). Two drains never apply deliveries about the same customer, so they never
# wait on each other's customer rows (or deadlock), and one customer's deliveries are applied in
# the order they came.
FAIR_BATCH_SQL = """
WITH RECURSIVE shops(domain) AS (
  (SELECT shop_domain FROM webhooks_webhookevent WHERE status = 'pending' ORDER BY shop_domain LIMIT 1)
  UNION ALL
  SELECT (SELECT e.shop_domain FROM webhooks_webhookevent e
          WHERE e.status = 'pending' AND e.shop_domain > shops.domain ORDER BY e.shop_domain LIMIT 1)
  FROM shops WHERE shops.domain IS NOT NULL
)
SELECT picked.id FROM shops CROSS JOIN LATERAL (
  SELECT e.id FROM webhooks_webhookevent e
  WHERE e.shop_domain = shops.domain AND e.status = 'pending' AND e.next_attempt_at <= %s
    AND coalesce(e.customer_key, 0) %% %s = %s
  ORDER BY e.id
  LIMIT (SELECT greatest(1, %s / count(*)) FROM shops WHERE domain IS NOT NULL)
  FOR UPDATE SKIP LOCKED
) picked"""


@dataclass(frozen=True)
class Lane:
    """Which share of the deliveries a drain applies: lane `number` of `of` (see FAIR_BATCH_SQL)."""
    number: int = 0
    of: int = 1


def _locked_batch(size: int, lane: Lane) -> tuple[list[WebhookEvent], int]:
    """Due pending events, evenly across shops (FAIR_BATCH_SQL), locked, and how many were taken;
    read together, or one by one when a payload in the batch cannot be read (that event fails; the
    rows are locked either way, the failure being in Python after the query)."""
    fair = RawSQL(FAIR_BATCH_SQL, (timezone.now(), lane.of, lane.number, size))
    due = (WebhookEvent.objects.select_for_update(skip_locked=True)
           .filter(pk__in=fair, status=EventStatus.PENDING).order_by("id"))
    try:
        events = list(due)
        return events, len(events)
    except UNREADABLE:
        pks = list(due.values_list("pk", flat=True))
        return [event for event in map(_read_one, pks) if event is not None], len(pks)


def _runs(events: list[WebhookEvent]) -> list[list[WebhookEvent]]:
    """The batch as units to apply: each shop's events in order, consecutive deliveries of a topic
    with a run handler (RUN_HANDLERS) together, every other event alone. Shops are independent, so
    putting one shop's events together changes no outcome."""
    by_shop: dict[str, list[WebhookEvent]] = {}
    for event in events:
        by_shop.setdefault(event.shop_domain, []).append(event)
    units: list[list[WebhookEvent]] = []
    for shop_events in by_shop.values():
        for event in shop_events:
            last = units[-1] if units else None
            if (last and event.topic in RUN_HANDLERS and last[-1].topic == event.topic
                    and last[-1].shop_domain == event.shop_domain):
                last.append(event)
            else:
                units.append([event])
    return units


def _process_run(events: list[WebhookEvent]) -> bool:
    """Apply a run of one shop's deliveries of one topic in one go and mark them processed; False,
    with nothing written, when its handler declines or fails (then each is applied alone, so only
    the failing delivery is retried and its error is its own)."""
    for event in events:
        _api_notice(event)
    topic = events[0].topic
    try:
        with transaction.atomic(), dirty_cause(topic):
            if not RUN_HANDLERS[topic](events[0].shop_domain, [event.payload for event in events]):
                return False
    except Exception:   # noqa: BLE001 -- the one-by-one pass records it
        return False
    now = timezone.now()
    WebhookEvent.objects.filter(pk__in=[event.pk for event in events]).update(
        status=EventStatus.PROCESSED, processed_at=now, last_error="", attempts=F("attempts") + 1)
    for event in events:
        event.status, event.processed_at, event.last_error = EventStatus.PROCESSED, now, ""
    return True


def webhook_events_drain(*, batch: int = DRAIN_BATCH, budget: dt.timedelta = dt.timedelta(seconds=50),
                         heartbeat: Callable[[], None] = lambda: None, lane: Lane = Lane()) -> int:
    """Process the lane's due pending events, a locked batch at a time (evenly across shops, each
    shop's oldest first), until none are left; `heartbeat` is called after each batch.

    `SKIP LOCKED` lets any number of workers drain together without waiting on each other. Within
    a batch, a shop's consecutive order deliveries are applied together (_runs). A redaction in a
    batch sets later events of the same batch aside in the database; they are dropped from the
    batch held in memory, so the erased data is not applied after its erasure.
    """
    deadline = timezone.now() + budget
    done = 0
    while timezone.now() < deadline:
        with transaction.atomic():
            events, taken = _locked_batch(batch, lane)
            set_aside: set[int] = set()
            for unit in _runs(events):
                unit = [event for event in unit if event.pk not in set_aside]
                if len(unit) > 1 and _process_run(unit):
                    continue
                for event in unit:
                    _process_locked(event)
                    if event.topic in SETS_OTHERS_ASIDE:
                        rest = [e.pk for e in events if e.status == EventStatus.PENDING and e.pk not in set_aside]
                        set_aside |= set(rest) - set(WebhookEvent.objects.filter(
                            pk__in=rest, status=EventStatus.PENDING).values_list("pk", flat=True))
        if not taken:
            break
        done += taken
        heartbeat()
    return done


def webhook_events_pending_due(lane: Lane = Lane()) -> bool:
    """Anything due in the lane (by default, in any)."""
    due = WebhookEvent.objects.filter(status=EventStatus.PENDING, next_attempt_at__lte=timezone.now())
    if lane.of > 1:
        due = due.alias(lane=Mod(Coalesce("customer_key", 0), lane.of)).filter(lane=lane.number)
    return due.exists()
