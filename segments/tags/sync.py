"""Tag sync: membership written to Shopify as customer tags, as a diff, within the rate limit.

The outbox (TagChange rows from membership, drift and resync) says which customers need looking
at; what they should carry is decided afresh for each of them when they are synced:

- desired: the tags their memberships call for (prefix + handle; the holdout tag for holdout
  members when the shop has one), from the Membership table, so a burst of entries and exits for
  one customer is one diff;
- last known: `Customer.tags`, the tags Shopify holds as the mirror last saw them;
- ours: the customer ledger (CustomerTag). Only tags in it are ever removed; a tag that was already
  there before we wanted it is the merchant's and is never touched, even if it looks like ours.

The diff becomes `tagsAdd` / `tagsRemove` calls (never `customerUpdate(tags:)`), several customers
per request as GraphQL aliases, sized by cost (10 points a mutation, under the 1,000-point cap and
the bucket), sent through the shop's shared budget (segments.shops.graphql). A customer whose
diff is empty costs no call. Large diffs go to a bulk mutation (segments.tags.bulk).

Crash safety: before the call, the ledger rows of tags about to be added are written (pending) and
those about to be removed are stamped sent (`sent_at` after `confirmed_at`: a removal unanswered);
a customer's outbox rows, ledger, audit and `Customer.tags` are updated in one transaction only
after Shopify answered. A worker that dies in between leaves all of it as it was, and the next run
decides each customer again: a change whose echo (`customer.tags_*`) already reached the mirror is
audited as Shopify's webhook confirmed it and costs no call; any other is sent again, and since
tagsAdd and tagsRemove are set operations the replay changes nothing visible. Either way the audit
gets one row per change Shopify applied. Runs of one shop are serialised by a PostgreSQL advisory
lock held for the run's connection, which the server releases if the worker dies.

Recording never waits for one customer's row while holding another's (see `_record_in_turn`), so
it cannot deadlock with a webhook drain that locks the same customers in its own order.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection
from django.utils import timezone

from segments.shops.graphql import shop_sender_run
from segments.shops.models import Shop
from segments.tags import bulk as tag_bulk
from segments.tags import ledger
from segments.tags import metafield as tag_metafield
from segments.tags.ledger import changes_back_off, ledger_intend
from segments.tags.plans import CUSTOMERS_PER_PLAN, Plan, claim_batch, plans_for
from segments.tags.transport import Sender, SyncReport, max_mutations_per_request
from shopseg.shopify.errors import ShopifyQueryError, ShopifyTransientError

log = logging.getLogger(__name__)
MAX_TRANSIENT_WAIT = 60.0       # seconds one request may spend on 5xx / network retries before the run stops
_LOCK_NAMESPACE = 0x7A6         # pg_try_advisory_lock(namespace, shop id): one tag sync run per shop


class _ShopLock:
    """pg_try_advisory_lock for the run's connection: released on exit, or by the server if we die."""

    def __init__(self, shop_id: int):
        self.shop_id, self.held = shop_id, False

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, self.shop_id])
            self.held = bool(cursor.fetchone()[0])
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, self.shop_id])


def shop_tags_sync(*, shop_id: int, budget_seconds: float | None = None, use_bulk: bool = True) -> SyncReport:
    """Sync a shop's due tag changes until none are left or the time budget is spent.

    Large diffs (at least SHOPSEG_TAG_BULK_THRESHOLD customers) go to a bulk mutation; running bulk
    operations are polled and their results applied. Stops quietly for an uninstalled shop.
    """

    report = SyncReport()
    budget = settings.SHOPSEG_TAG_SYNC_RUN_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    with _ShopLock(shop_id) as locked:
        if not locked:
            report.stopped = "busy"
            return report
        shop = Shop.objects.filter(pk=shop_id).first()
        if shop is None or not shop.is_active:
            report.stopped = "unavailable"
            return report
        def run(sender: Sender) -> None:
            try:
                if use_bulk:
                    tag_bulk.bulk_advance(shop=shop, client=sender, report=report)
                _direct(shop, sender, report, deadline, use_bulk)
            finally:
                report.requests += sender.requests
                report.points += sender.points
                report.throttled += sender.throttled
                report.transient += sender.transient

        report.stopped = shop_sender_run(shop_id=shop_id, call=run, sender=Sender, what="tag sync",
                                         max_transient_wait=MAX_TRANSIENT_WAIT) or report.stopped
    return report


def _direct(shop: Shop, sender: Sender, report: SyncReport, deadline: float, use_bulk: bool) -> None:

    per_request = max_mutations_per_request(sender.throttle.capacity())
    while time.monotonic() < deadline:
        if use_bulk and tag_bulk.bulk_should_start(shop=shop):
            tag_bulk.bulk_start(shop=shop, client=sender, report=report)
            continue
        customers, changes = claim_batch(shop=shop, customers=CUSTOMERS_PER_PLAN)
        if not customers:
            return
        plans = plans_for(shop=shop, customer_ids=customers, changes=changes)
        quiet = [p for p in plans if not p.mutations]
        if quiet:
            report.add(ledger.confirm(shop=shop, plans=quiet, outcomes={}, at=timezone.now()))
        busy = [p for p in plans if p.mutations]
        report.customers += len(plans)
        if shop.tag_metafield:
            metafield_customers = {p.customer_id: p.shopify_id for p in plans if not p.gone and (p.mutations or p.resync)}
        if not busy:
            if shop.tag_metafield:
                report.add(tag_metafield.metafields_write(shop=shop, sender=sender, customers=metafield_customers))
            continue
        now = timezone.now()
        ledger_intend(shop=shop, plans=busy, now=now)
        for chunk in _requests(busy, per_request):
            at = timezone.now()
            try:
                outcomes = sender.send(chunk)
            except (ShopifyTransientError, ShopifyQueryError) as exc:
                # Everything not yet answered stays pending, with backoff; confirmed chunks stay done.
                done = {p.customer_id for p in busy[:busy.index(chunk[0])]}
                changes_back_off(change_ids=[i for p in busy if p.customer_id not in done for i in p.change_ids],
                                 error=f"{type(exc).__name__}: {exc}")
                raise
            report.calls += sum(p.mutations for p in chunk)
            report.add(ledger.confirm(shop=shop, plans=chunk, outcomes=outcomes, at=at))
        if shop.tag_metafield:
            report.add(tag_metafield.metafields_write(shop=shop, sender=sender, customers=metafield_customers))


def _requests(plans: Sequence[Plan], per_request: int) -> Iterable[list[Plan]]:
    chunk: list[Plan] = []
    size = 0
    for plan in plans:
        if chunk and size + plan.mutations > per_request:
            yield chunk
            chunk, size = [], 0
        chunk.append(plan)
        size += plan.mutations
    if chunk:
        yield chunk
