"""Shopify Flow triggers: "Customer entered segment" and "Customer left segment" (the app's
flow_trigger extensions, extensions/shopseg-flow-*), sent with `flowTriggerReceive` from the outbox
segments.membership.recompute fills (FlowTrigger), so merchants build their own automations on
shopseg's segments.

Like tag sync: through the shop's shared GraphQL budget (throttled calls wait, transient failures are
retried), several triggers per request as aliased mutations, a row marked in the same transaction
that locks it while Shopify answers (two senders never send one row; a worker killed before its
commit leaves the row to be sent again: at least once, never silently lost), backoff after an error
and `failed` after MAX_ATTEMPTS. A segment's playbook frequency cap (messages per member per week)
holds back triggers past it (`capped`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from segments.experiences.models import Playbook
from segments.membership.models import FlowTrigger
from segments.shops.graphql import ShopSender, shop_sender_run
from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.errors import ShopifyTransientError

HANDLES = {True: "customer-entered-segment", False: "customer-left-segment"}   # the extensions' handles
PER_REQUEST = 20            # aliased mutations per request (10 points each)
MUTATION_COST = 10
MAX_ATTEMPTS = 8
CAP_WINDOW = dt.timedelta(days=7)
MAX_TRANSIENT_WAIT = 15.0   # seconds a request may retry 5xx answers; then the rows back off and wait


def mutation_document(count: int) -> str:
    variables = ", ".join(f"$h{n}: String, $p{n}: JSON" for n in range(count))
    fields = " ".join(f"m{n}: flowTriggerReceive(handle: $h{n}, payload: $p{n}) {{ userErrors {{ field message }} }}"
                      for n in range(count))
    return f"mutation FlowTriggers({variables}) {{ {fields} }}"


def trigger_payload(row: FlowTrigger) -> dict:
    """The trigger's fields: the customer (a customer_reference field is `customer_id`, Shopify's
    numeric id) and the segment's name and tag."""
    return {"customer_id": row.customer.shopify_id, "Segment name": row.segment.name,
            "Segment tag": row.segment.tag}


@dataclass
class FlowReport:
    requests: int = 0
    results: dict[str, int] = field(default_factory=dict)
    stopped: str = ""

    def count(self, result: str, n: int = 1) -> None:
        self.results[result] = self.results.get(result, 0) + n


def shop_flow_send(*, shop_id: int, limit: int = 500) -> FlowReport:
    """Send the shop's due Flow triggers, at most `limit` rows in a run."""
    report = FlowReport()
    if not Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).exists():
        report.stopped = "unavailable"
        return report

    def run(sender: ShopSender) -> None:
        taken = 0
        while taken < limit and (done := _send_batch(shop_id, sender, report)):
            taken += done
    report.stopped = shop_sender_run(shop_id=shop_id, call=run, what="Flow triggers",
                                     max_transient_wait=MAX_TRANSIENT_WAIT)
    return report


def _send_batch(shop_id: int, sender: ShopSender, report: FlowReport) -> int:
    """One request's worth of due rows, sent and marked in one transaction; how many were taken."""
    now, failure = timezone.now(), None
    with transaction.atomic():
        rows = list(FlowTrigger.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(shop_id=shop_id, processed_at__isnull=True)
                    .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                    .select_related("segment", "customer").order_by("id")[:PER_REQUEST])
        if not rows:
            return 0
        capped = _over_cap(rows, now)
        due = [r for r in rows if r.pk not in capped]
        for row in rows:
            if row.pk in capped:
                _mark(row, now, "capped")
        if capped:
            report.count("capped", len(capped))
        if due:
            variables = {}
            for n, row in enumerate(due):
                variables[f"h{n}"], variables[f"p{n}"] = HANDLES[row.entered], trigger_payload(row)
            try:
                result = sender.call(mutation_document(len(due)), variables, MUTATION_COST * len(due))
            except ShopifyTransientError as exc:    # still failing after the sender's own retries
                for row in due:
                    _retry_later(row, now, str(exc))
                failure = exc                       # raised once the backoff is committed
            else:
                report.requests += 1
                _record(due, result.data, now, report)
    if failure is not None:
        raise failure
    return len(rows)


def _record(due: list[FlowTrigger], data: dict, now: dt.datetime, report: FlowReport) -> None:
    for n, row in enumerate(due):
        payload = data.get(f"m{n}")
        errors = (payload or {}).get("userErrors") or []
        if payload is None:             # the field failed (an internal error): send it again later
            _retry_later(row, now, "no result")
            report.count("retry")
        elif errors:
            _mark(row, now, "refused", "; ".join(e.get("message", "") for e in errors))
            report.count("refused")
        else:
            _mark(row, now, "sent")
            report.count("sent")


def _over_cap(rows: list[FlowTrigger], now: dt.datetime) -> set[int]:
    """Rows whose segment's playbook caps messages per member per week, for members already at it
    (counting triggers sent in the last 7 days and those before them in this batch)."""
    caps = dict(Playbook.objects.filter(segment_id__in={r.segment_id for r in rows}, frequency_cap__isnull=False)
                .values_list("segment_id", "frequency_cap"))
    over, counted = set(), {}
    for row in rows:
        cap = caps.get(row.segment_id)
        if cap is None:
            continue
        key = (row.customer_id, row.segment_id)
        if key not in counted:
            counted[key] = FlowTrigger.objects.filter(customer_id=row.customer_id, segment_id=row.segment_id,
                                                      result="sent", processed_at__gte=now - CAP_WINDOW).count()
        if counted[key] >= cap:
            over.add(row.pk)
        else:
            counted[key] += 1
    return over


def _mark(row: FlowTrigger, now: dt.datetime, result: str, error: str = "") -> None:
    FlowTrigger.objects.filter(pk=row.pk).update(processed_at=now, result=result, last_error=error[:255])


def _retry_later(row: FlowTrigger, now: dt.datetime, error: str) -> None:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        FlowTrigger.objects.filter(pk=row.pk).update(processed_at=now, result="failed", attempts=attempts,
                                                     last_error=error[:255])
        return
    FlowTrigger.objects.filter(pk=row.pk).update(attempts=attempts, last_error=error[:255],
                                                 next_attempt_at=now + dt.timedelta(seconds=min(3600, 5 * 2 ** attempts)))


def shops_with_due_flow_triggers() -> list[int]:
    return list(FlowTrigger.objects.filter(processed_at__isnull=True, shop__status=ShopStatus.INSTALLED)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
                .values_list("shop_id", flat=True).distinct())


def flow_outbox_purge(*, older_than: dt.timedelta) -> int:
    """Processed rows are kept at least as long as the frequency cap looks back, then deleted."""
    cutoff = timezone.now() - max(older_than, CAP_WINDOW)
    return FlowTrigger.objects.filter(processed_at__lt=cutoff).delete()[0]
