"""Tag sync when Shopify misbehaves: THROTTLED and 5xx answers injected by devstore lose nothing and
duplicate nothing; a worker that dies after Shopify applied a batch but before it was recorded is
replayed without visible effect; the 250-tag limit is handled and reported; the throttle is shared."""
from __future__ import annotations

import threading

import pytest
import redis
from django.utils import timezone

from segments.membership.models import TagChange
from segments.shops.throttle import ShopThrottle
from segments.shops.tokens import with_shop_client
from segments.tags import sync as tag_sync
from segments.tags import transport as tag_transport
from segments.tags.ledger import ledger_intend
from segments.tags.models import CustomerTag, LedgerState, TagAudit, TagResult
from segments.tags.plans import claim_batch, plans_for
from segments.tags.sync import shop_tags_sync
from segments.tags.transport import Sender
from shopseg.shopify.client import ThrottleStatus
from tests.segments.tags.conftest import BUYERS

pytestmark = pytest.mark.django_db


def members(tagstore, count: int, tags=None) -> list[int]:
    sids = tagstore.customers(count, tags=tags)
    for sid in sids:
        tagstore.order(sid)
    return sids


def fault(tagstore, kind: str, params) -> None:
    tagstore.devstore.control("POST", "/faults", json={"shop": tagstore.shop.domain, "kind": kind, "params": params})


@pytest.fixture(autouse=True)
def no_faults(devstore):
    yield
    devstore.control("DELETE", "/faults")


def test_throttled_answers_are_waited_out_and_lose_nothing(tagstore, settings):
    # given 12 members and requests of 4 mutations (40 points)
    settings.SHOPSEG_TAG_SYNC_MAX_MUTATIONS = 4
    sids = members(tagstore, 12)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    # when devstore says THROTTLED (nothing available) for the first second
    fault(tagstore, "throttle", {"available": 0})
    threading.Timer(1.0, lambda: fault(tagstore, "throttle", None)).start()
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then the sync waited as Shopify's throttleStatus said, and every customer is tagged once
    assert report.throttled >= 1 and report.stopped == ""
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in sids)
    assert TagAudit.objects.filter(shop=tagstore.shop).count() == 12
    assert len(tagstore.tag_events("customer.tags_added")) == 12
    assert tagstore.pending() == 0


def test_5xx_answers_are_retried_with_backoff(tagstore):
    sids = members(tagstore, 5)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    fault(tagstore, "error5xx", {"status": 503, "count": 2})
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    assert report.transient == 2 and report.requests == 1
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in sids)
    assert TagAudit.objects.filter(shop=tagstore.shop).count() == 5
    assert tagstore.pending() == 0


def test_persistent_5xx_leaves_the_changes_pending_with_backoff(tagstore, settings, monkeypatch):
    monkeypatch.setattr(tag_sync, "MAX_TRANSIENT_WAIT", 1.0)
    sids = members(tagstore, 3)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    fault(tagstore, "error5xx", {"status": 502})
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then nothing is lost: the rows wait for a later run, with attempts counted and no audit yet
    assert report.stopped.startswith("ShopifyTransientError")
    rows = TagChange.objects.filter(shop=tagstore.shop)
    assert rows.count() == 3 and all(r.processed_at is None and r.attempts == 1 and r.next_attempt_at for r in rows)
    assert not TagAudit.objects.exists()
    # when Shopify recovers and the backoff has passed
    fault(tagstore, "error5xx", None)
    rows.update(next_attempt_at=None)
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in sids)
    assert TagAudit.objects.filter(shop=tagstore.shop).count() == 3


def test_a_worker_killed_after_shopify_applied_is_replayed_without_visible_effect(tagstore):
    # given members of a segment and a worker that sends their tags...
    sids = members(tagstore, 6, tags=["merchant"])
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop = tagstore.shop
    customers, changes = claim_batch(shop=shop, customers=100)
    plans = plans_for(shop=shop, customer_ids=customers, changes=changes)
    ledger_intend(shop=shop, plans=plans, now=timezone.now())
    with_shop_client(shop_id=shop.pk, call=lambda client: Sender(client, ShopThrottle(shop.pk)).send(plans))
    # ...and dies before recording Shopify's answer
    assert all(tagstore.tags(sid) == ["merchant", "seg:buyers"] for sid in sids)
    assert tagstore.pending() == 6 and not TagAudit.objects.exists()
    assert set(CustomerTag.objects.values_list("state", flat=True)) == {LedgerState.PENDING}
    # when the next run picks the rows up
    report = shop_tags_sync(shop_id=shop.pk)
    # then the replay changed nothing visible: same tags, one webhook per customer, one audit row each
    assert report.calls == 6
    assert all(tagstore.tags(sid) == ["merchant", "seg:buyers"] for sid in sids)
    assert len(tagstore.tag_events("customer.tags_added")) == 6
    assert TagAudit.objects.filter(shop=shop).count() == 6
    assert tagstore.pending() == 0
    assert set(CustomerTag.objects.values_list("state", flat=True)) == {LedgerState.ACTIVE}


def test_the_250_tag_limit_is_reported_and_what_fits_is_written(tagstore):
    # given a customer with 249 tags of the merchant's, who qualifies for two segments
    (full,) = members(tagstore, 1, tags=[f"m{n}" for n in range(249)])
    tagstore.segment("buyers", BUYERS)
    tagstore.segment("everyone", {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 0}})
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # then the first segment's tag fits, the second is reported and kept blocked
    tags = tagstore.tags(full)
    assert len(tags) == 250 and tags[-1] == "seg:buyers"
    limit = TagAudit.objects.get(result=TagResult.TAG_LIMIT)
    assert (limit.tag, limit.source) == ("seg:everyone", "limit") and "250" in limit.detail
    assert CustomerTag.objects.get(key="seg:everyone").state == LedgerState.BLOCKED
    assert tagstore.pending() == 0
    # when the merchant frees room and the periodic check runs, the blocked tag is written
    tagstore.hand_edit(full, remove=["m0"])
    tagstore.shop.customers.filter(shopify_id=full).update(tags=tags[1:])
    from segments.tags.drift import CHECK_GRACE, shop_tags_check

    assert shop_tags_check(shop=tagstore.shop, now=timezone.now() + CHECK_GRACE) == 1
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(full)[-2:] == ["seg:buyers", "seg:everyone"]
    assert TagAudit.objects.filter(result=TagResult.TAG_LIMIT).count() == 1


def test_the_250_tag_limit_from_shopify_when_the_mirror_is_behind(tagstore):
    # given a customer the mirror thinks has no tags, but who has 250 in Shopify
    (full,) = members(tagstore, 1)
    tagstore.hand_edit(full, add=[f"m{n}" for n in range(250)])
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # then Shopify's userError is recorded as the limit, not retried
    audit = TagAudit.objects.get()
    assert audit.result == TagResult.TAG_LIMIT and "250" in audit.detail
    assert CustomerTag.objects.get().state == LedgerState.BLOCKED
    assert tagstore.pending() == 0 and "seg:buyers" not in tagstore.tags(full)


# -- the shared throttle -----------------------------------------------------------------------------
@pytest.fixture
def redis_url():
    import os

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(url).flushdb()
    return url


def test_the_throttle_is_shared_through_redis_and_follows_shopify(redis_url):
    now = [1000.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    one = ShopThrottle(77, redis_url=redis_url, clock=lambda: now[0], sleep=sleep)
    two = ShopThrottle(77, redis_url=redis_url, clock=lambda: now[0], sleep=sleep)
    # Shopify says: 1,000 of 2,000 available, 100 restored per second
    one.observe(ThrottleStatus(2000.0, 1000.0, 100.0))
    first = one.reserve(600)
    assert first.waited == 0
    # the other worker sees what the first one took: 400 left, so 600 more waits (600-400)/100 = 2 s
    second = two.reserve(600)
    assert second.waited == pytest.approx(2.0, abs=0.06)
    assert two.state().available == pytest.approx(0, abs=6)
    # the first answer says what Shopify holds, less the second request, which may not be charged yet
    one.settle(first, ThrottleStatus(2000.0, 1400.0, 100.0))
    assert two.state().available == pytest.approx(800)
    # with nothing in flight, Shopify's word is taken as it is (a THROTTLED answer's too)
    two.settle(second, ThrottleStatus(2000.0, 50.0, 100.0))
    assert one.state().available == pytest.approx(50)
    assert one.reserve(990).waited == pytest.approx(9.4, abs=0.06)


def test_until_shopify_has_answered_one_request_at_a_time_finds_out_the_bucket(redis_url):
    now = [1000.0]
    one = ShopThrottle(78, redis_url=redis_url, clock=lambda: now[0])
    first = one.reserve(990)

    answered = []

    def sleep(seconds):      # the first request is answered while the second waits
        now[0] += seconds
        if not answered:
            answered.append(one.settle(first, ThrottleStatus(1000.0, 10.0, 1000.0)))

    two = ShopThrottle(78, redis_url=redis_url, clock=lambda: now[0], sleep=sleep)
    # the bucket may be smaller than the two requests together: the second waits for the first answer,
    # then for the 980 points Shopify's figure lacks
    assert two.reserve(990).waited == pytest.approx(0.05 + 0.98, abs=0.06)


def test_a_reservation_whose_worker_died_stops_counting(redis_url):
    now = [1000.0]
    one = ShopThrottle(79, redis_url=redis_url, clock=lambda: now[0])
    one.observe(ThrottleStatus(2000.0, 2000.0, 100.0))
    one.reserve(1000)                      # never settled: the worker was killed mid-request
    now[0] += 61
    two = one.reserve(10)
    one.settle(two, ThrottleStatus(2000.0, 1500.0, 100.0))
    assert one.state().available == pytest.approx(1500)


def test_requests_never_exceed_the_cost_cap_or_the_bucket():
    assert tag_transport.max_mutations_per_request(2000.0) == 99
    assert tag_transport.max_mutations_per_request(500.0) == 50
    assert tag_transport.max_mutations_per_request(None) == 99


def test_a_worker_killed_after_shopify_applied_whose_echo_came_first_costs_no_call(tagstore):
    # given a worker that sent the tags and died before recording the answer...
    sids = members(tagstore, 3)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop = tagstore.shop
    customers, changes = claim_batch(shop=shop, customers=100)
    plans = plans_for(shop=shop, customer_ids=customers, changes=changes)
    ledger_intend(shop=shop, plans=plans, now=timezone.now())
    with_shop_client(shop_id=shop.pk, call=lambda client: Sender(client, ShopThrottle(shop.pk)).send(plans))
    # ...and the echoes (customer.tags_added) reached the mirror first
    from webhooks import handlers

    for sid in sids:
        handlers.customer_tags_added(shop.domain, {"customerId": f"gid://shopify/Customer/{sid}",
                                                   "tags": ["seg:buyers"], "occurredAt": None})
    # when the next run picks the rows up: nothing to send, the ledger confirmed, each change audited once
    report = shop_tags_sync(shop_id=shop.pk)
    assert (report.calls, report.requests) == (0, 0)
    assert set(CustomerTag.objects.filter(shop=shop).values_list("state", flat=True)) == {LedgerState.ACTIVE}
    assert TagAudit.objects.filter(shop=shop, result=TagResult.APPLIED).count() == 3
    assert tagstore.pending() == 0 and len(tagstore.tag_events("customer.tags_added")) == 3
    assert not TagAudit.objects.filter(shop=shop, source="drift").exists()
