"""The browsing templates against devstore's shoppers: on a seeded, backfilled shop, a month of every
browser's visits (devstore.shoppers, each browser with a persona for good) comes in through the
pixel's own ingest, each batch at its visit's time, is rolled up, and each template's members are
compared with the personas and visits devstore knows. Only browsers that signed in at least once
can be anyone's: the others' customers are not expected."""
from __future__ import annotations

import collections
import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from devstore.shoppers import BATCH, CAMPAIGNS, ShopperSimulator
from segments.engine import compiler
from segments.engine.rules import parse
from segments.engine.templates import TEMPLATES, template_document
from segments.mirror.models import Customer
from segments.storefront.batch import batch_read
from segments.storefront.ingest import batch_ingest
from segments.storefront.models import Pixel
from segments.storefront.rollup import visitor_days_rollup
from tests.segments.engine.seeded import Measured, seeded_shop, truth_of

# After the purchase history's end, as in test_templates: October holds no shopping holiday.
NOW = dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)
CUSTOMERS = 700
BROWSERS = 800
CUSTOMER_SHARE = 0.8      # 640 customers' browsers; the other 160 are nobody's
SEED = 23
HISTORY_DAYS = 35


@dataclass
class Shoppers:
    """What devstore knows of the browsing of each customer (by mirror pk) whose browser signed in."""

    persona: dict[int, str] = field(default_factory=dict)
    campaign: dict[int, str] = field(default_factory=dict)     # the campaign persona's campaign
    first: dict[int, dt.datetime] = field(default_factory=dict)
    visits: dict[int, list[dt.datetime]] = field(default_factory=lambda: collections.defaultdict(list))
    arrivals: dict[int, list[tuple[dt.datetime, str]]] = field(   # visits by a campaign's links, oldest first
        default_factory=lambda: collections.defaultdict(list))

    def of(self, *personas: str) -> set[int]:
        return {pk for pk, p in self.persona.items() if p in personas}


def _browse(shop, sim: ShopperSimulator) -> Shoppers:
    """Every visit of the month through batch_read and batch_ingest at its own time, then the rollup."""
    key = Pixel.objects.get_or_create(shop=shop)[0].ingest_key
    pk_of = dict(Customer.objects.filter(shop=shop).values_list("shopify_id", "pk"))
    known = Shoppers()
    for browser, events in sim.history(days=HISTORY_DAYS, now=NOW):
        for start in range(0, len(events), BATCH):
            chunk = events[start:start + BATCH]
            raw = json.dumps({"key": key, "shop": shop.domain, "analytics": True, "events": chunk}).encode()
            sent = dt.datetime.fromisoformat(chunk[-1]["timestamp"]) + dt.timedelta(seconds=1)
            batch_ingest(batch_read(raw, now=sent), now=sent)
        if any(e["customerId"] for e in events):
            pk = pk_of[browser.customer_id]
            known.persona[pk], known.campaign[pk] = browser.persona, browser.campaign[2]
        pk = pk_of.get(browser.customer_id)
        at = dt.datetime.fromisoformat(events[0]["timestamp"])
        if pk is not None:
            known.first.setdefault(pk, at)
            known.visits[pk].append(at)
            campaign = parse_qs(urlsplit(events[0]["url"]).query).get("utm_campaign")
            if campaign:
                known.arrivals[pk].append((at, campaign[0]))
    while visitor_days_rollup():
        pass
    for pk in set(known.first) - set(known.persona):      # never signed in: nobody's to the app
        del known.first[pk], known.visits[pk]
    return known


def _measure(selected: set[int], right: set[int], wanted: set[int], known: Shoppers) -> Measured:
    """As seeded.measure, with the shoppers' personas in `who`."""
    who = collections.Counter(known.persona.get(pk, "not browsing") for pk in selected).most_common()
    return Measured(selected=len(selected), precision=len(selected & right) / max(1, len(selected)),
                    recall=len(selected & wanted) / max(1, len(wanted)), wanted=len(wanted), who=who)


def _evaluate(shop, key: str, **overrides) -> set[int]:
    return compiler.evaluate(parse(template_document(key, **overrides)), shop=shop, now=NOW)


def _days_ago(shop, moment: dt.datetime) -> int:
    zone = ZoneInfo(shop.iana_timezone)
    return (NOW.astimezone(zone).date() - moment.astimezone(zone).date()).days


def _no_recent_order(truth, pk: int) -> bool:
    return not any(NOW - at <= dt.timedelta(days=90) for at, _ in truth.orders.get(pk, []))


def _persona(key: str, persona: str):
    def case(shop, truth, known: Shoppers) -> Measured:
        wanted = known.of(persona)
        if key == "browse_heavy_low_purchase":
            wanted = {pk for pk in wanted if _no_recent_order(truth, pk)}
        return _measure(_evaluate(shop, key), wanted, wanted, known)
    return case


def _new_visitors(shop, truth, known: Shoppers) -> Measured:
    wanted = {pk for pk, first in known.first.items() if _days_ago(shop, first) <= 7}
    return _measure(_evaluate(shop, "new_visitors"), wanted, wanted, known)


def _returning_non_buyers(shop, truth, known: Shoppers) -> Measured:
    wanted = {pk for pk, visits in known.visits.items()
              if sum(1 for at in visits if _days_ago(shop, at) < 30) >= 3 and _days_ago(shop, known.first[pk]) > 7
              and _no_recent_order(truth, pk)}
    return _measure(_evaluate(shop, "returning_non_buyers"), wanted, wanted, known)


def _ad_driven(shop, truth, known: Shoppers) -> Measured:
    """The template once per campaign. A pick is right when the customer's latest visit by a campaign's
    links in the last 30 days was by this campaign's (newsletter readers of any persona included);
    recall is of the campaign shoppers found for their own campaign."""
    picks, right, found = [], 0, set()
    for _, _, campaign in CAMPAIGNS:
        for pk in _evaluate(shop, "ad_driven_visitors", campaign=campaign):
            picks.append(pk)
            recent = [name for at, name in known.arrivals.get(pk, []) if _days_ago(shop, at) < 30]
            right += bool(recent) and recent[-1] == campaign
            if known.persona.get(pk) == "campaign" and known.campaign[pk] == campaign:
                found.add(pk)
    wanted = {pk for pk in known.of("campaign") if any(_days_ago(shop, at) < 30 for at, _ in known.arrivals[pk])}
    who = collections.Counter(known.persona.get(pk, "not browsing") for pk in picks).most_common()
    return Measured(selected=len(picks), precision=right / max(1, len(picks)), recall=len(found & wanted) / len(wanted),
                    wanted=len(wanted), who=who)


# (case, how to measure, minimum precision, minimum recall): the browsing is seeded with a fixed seed
# and day, so the numbers are the same on every run; the minimums sit a few points under the measured
# values (in the comments).
CASES = {
    # ~0.98 / ~0.85: recall misses browse-heavy shoppers new this week, with fewer than 20 views yet.
    "browse_heavy_low_purchase": (_persona("browse_heavy_low_purchase", "browse_heavy"), 0.95, 0.8),
    # ~1.0 / ~0.86: half their searches name the product in full; a shopper with one visit this month
    # may have made only one high-intent search.
    "high_intent_visitors": (_persona("high_intent_visitors", "high_intent"), 0.95, 0.8),
    # The definition itself, from the shoppers' first visits: exact.
    "new_visitors": (_new_visitors, 1.0, 1.0),
    # The definition, from the shoppers' visits and devstore's orders (~0.99 / 1.0: a few visits that
    # fall within 30 minutes of another are one visit to the app).
    "returning_non_buyers": (_returning_non_buyers, 0.95, 0.95),
    # ~0.70 / ~0.89: campaign shoppers add to the cart on a third of their visits and never check out,
    # which is window shopping by any reading; they are most of the rest.
    "window_shoppers": (_persona("window_shoppers", "window_shopper"), 0.65, 0.85),
    # ~0.92 / ~0.89: a browse-heavy shopper's odd collection view adds up over a month.
    "category_browsers": (_persona("category_browsers", "category_browser"), 0.85, 0.85),
    # ~0.98 / 1.0: every campaign shopper is found under their own campaign.
    "ad_driven_visitors": (_ad_driven, 0.95, 0.95),
}


def test_every_browsing_template_is_measured():
    assert {t.key for t in TEMPLATES if t.family == "browsing"} == set(CASES)


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker, devstore_server):
    with (seeded_shop(devstore_server, django_db_blocker, customers=CUSTOMERS, seed=SEED, now=NOW) as (shop, devstore),
          override_settings(STOREFRONT_CLIENT_EVENTS=10**9)):     # a month of one browser arrives in seconds
        sim = ShopperSimulator(devstore_server.app.store, shop.domain, seed=SEED, browsers=BROWSERS,
                               customer_share=CUSTOMER_SHARE)
        known = _browse(shop, sim)
        truth = truth_of(devstore, shop)
        return {case: how(shop, truth, known) for case, (how, _, _) in CASES.items()}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_browsing_template_matches_its_shoppers(measured, case):
    _, min_precision, min_recall = CASES[case]
    result = measured[case]
    assert result.precision >= min_precision and result.recall >= min_recall, f"{case}: {result}"
