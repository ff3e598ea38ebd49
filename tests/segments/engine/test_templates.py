"""Segment templates: each parses and round-trips, its editable values can be filled in, and on a
seeded devstore shop, backfilled through the real install, each purchase template picks out the
persona it targets (the browsing templates: test_browsing_templates)."""
from __future__ import annotations

import collections
import datetime as dt
import re
import statistics
from zoneinfo import ZoneInfo

import pytest

from devstore.personas import PERSONAS
from devstore.shoppers import PERSONAS as SHOPPER_PERSONAS
from segments.engine import compiler
from segments.engine.rules import RuleError, parse
from segments.engine.templates import TEMPLATE_BY_KEY, TEMPLATES, Editable, _steps, template_document
from segments.shops.models import Shop
from tests.segments.engine.seeded import Measured, measure, seeded_shop, truth_of

REQUIRED_KEYS = (
    "high_value_repeat", "vip", "frequent_buyers", "bargain_hunters", "full_price_loyalists",
    "one_time_purchasers", "new_customers", "returning_customers", "seasonal_holiday", "mobile_first",
    "high_value_cart_abandoners", "low_value_cart_abandoners", "category_loyalists", "replenishment_due",
    "at_risk_lapsed", "fastest_shipping",
    # browsing (issue 18)
    "browse_heavy_low_purchase", "high_intent_visitors", "new_visitors", "returning_non_buyers", "window_shoppers",
    "category_browsers", "ad_driven_visitors",
    # predictions (issue 20)
    "likely_to_churn", "ordering_soon",
)


def _at(document: dict, path: str) -> object:
    node: object = document
    for step in _steps(path):
        node = node[step]   # type: ignore[index]
    return node


# --- the templates themselves ------------------------------------------------------------------


def test_the_required_templates_are_there_once_each():
    assert tuple(t.key for t in TEMPLATES) == REQUIRED_KEYS
    assert set(TEMPLATE_BY_KEY) == set(REQUIRED_KEYS)
    handles = [t.tag_handle for t in TEMPLATES]
    assert len(set(handles)) == len(handles)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", h) and len(h) <= 60 for h in handles)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_template_parses_and_round_trips(template):
    ruleset = parse(template.rules)

    assert ruleset.to_document() == template.rules          # written in canonical form
    assert parse(ruleset.to_document()) == ruleset
    assert template_document(template.key) == template.rules
    assert template.document() == template.rules
    assert template.name and template.why and "\n" not in template.why and len(template.why) <= 120
    personas = PERSONAS if template.family != "browsing" else [p for p, _, _ in SHOPPER_PERSONAS]
    assert template.persona is None or template.persona in personas
    assert template.persona is not None or template.persona_note   # no single persona: say so


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_editable_paths_point_at_values_in_the_rules(template):
    assert template.editable, "a template with nothing to tweak"
    for entry in template.editable:
        assert isinstance(entry, Editable) and entry.label and re.fullmatch(r"[a-z_]+", entry.name)
        assert _at(template.rules, entry.path) is not None
    # one name, one kind of value: a name filling several paths fills like with like
    by_name = collections.defaultdict(set)
    for entry in template.editable:
        by_name[entry.name].add(repr(_at(template.rules, entry.path)))
    assert all(len(values) == 1 for values in by_name.values())


def test_overrides_fill_the_editable_values_in_canonical_form():
    high = template_document("high_value_cart_abandoners", threshold="150")
    assert _at(high, "include.all[2]") == {"metric": "last_abandoned_value", "op": "gte", "value": "150.00"}
    low = template_document("low_value_cart_abandoners", threshold=75.5, days=14)
    assert _at(low, "include.all[2].value") == "75.50"
    assert _at(low, "include.all[0].window") == {"last_days": 14}

    coffee = template_document("category_loyalists", product_type="Tea", share=0.75)
    assert _at(coffee, "include.all[1]") == {"metric": "product_type_share", "op": "gte", "value": "0.75",
                                            "params": {"product_type": "Tea"}}

    sixty = template_document("frequent_buyers", days=60, amount="300", min_orders=4)
    assert [c["window"] for c in sixty["include"]["all"]] == [{"last_days": 60}, {"last_days": 60}]
    assert [c["value"] for c in sixty["include"]["all"]] == [4, "300.00"]

    assert _at(template_document("vip", percentile="0.95"), "include.value") == "0.95"
    assert _at(template_document("seasonal_holiday", months=[11, 12]), "include.all[1].params.months") == [11, 12]
    ads = template_document("ad_driven_visitors", campaign="spring_sale", days=14)
    assert _at(ads, "include") == {"metric": "utm_campaign", "op": "eq", "value": "spring_sale",
                                   "window": {"last_days": 14}}
    # the template itself is untouched
    assert _at(TEMPLATE_BY_KEY["high_value_cart_abandoners"].rules, "include.all[2].value") == "100.00"
    assert _at(TEMPLATE_BY_KEY["category_loyalists"].rules, "include.all[1].params.product_type") == "Coffee"
    assert _at(TEMPLATE_BY_KEY["frequent_buyers"].rules, "include.all[0].window") == {"last_days": 90}


def test_an_override_it_does_not_have_is_refused():
    with pytest.raises(TypeError, match="threshold"):
        template_document("vip", threshold="100")
    with pytest.raises(TypeError, match="product_type"):
        template_document("high_value_cart_abandoners", product_type="Coffee")
    with pytest.raises(KeyError):
        template_document("no_such_template")


@pytest.mark.parametrize(("key", "overrides", "path"), [
    ("high_value_cart_abandoners", {"threshold": "-5"}, "include.all[2].value"),
    ("high_value_cart_abandoners", {"threshold": "12.345"}, "include.all[2].value"),
    ("low_value_cart_abandoners", {"threshold": "lots"}, "include.all[2].value"),
    ("low_value_cart_abandoners", {"days": 0}, "include.all[0].window.last_days"),
    ("category_loyalists", {"product_type": "   "}, "include.all[1].params.product_type"),
    ("category_loyalists", {"product_type": 7}, "include.all[1].params.product_type"),
    ("category_loyalists", {"share": "1.5"}, "include.all[1].value"),
    ("vip", {"percentile": True}, "include.value"),
    ("frequent_buyers", {"min_orders": 2.5}, "include.all[0].value"),
    ("seasonal_holiday", {"months": [13]}, "include.all[1].params.months[0]"),
    ("new_customers", {"days": "30"}, "include.all[0].value"),
    ("ad_driven_visitors", {"campaign": "  "}, "include.value"),
    ("window_shoppers", {"min_adds": -1}, "include.all[0].value"),
])
def test_a_value_the_rules_do_not_allow_is_refused_at_its_path(key, overrides, path):
    with pytest.raises(RuleError) as refused:
        template_document(key, **overrides)
    assert path in [p.path for p in refused.value.problems], refused.value.problems


# --- against the devstore personas --------------------------------------------------------------

# The seeded history ends at the start of NOW's UTC day (the generator's "today"); rules are
# evaluated at NOW, half a day later. 1 October: the last 30 days (new customers) and the last
# 120 (cart abandoners) hold no shopping holiday, so recent activity does not look seasonal.
NOW = dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)
CUSTOMERS = 3000
SEED = 11


def _evaluate(shop: Shop, key: str, **overrides) -> set[int]:
    return compiler.evaluate(parse(template_document(key, **overrides)), shop=shop, now=NOW)


def _persona_case(shop, truth, key, personas, *, recall_of=None, **overrides) -> Measured:
    """Members of the template against the customers of `personas` (recall: of `recall_of`)."""
    selected = _evaluate(shop, key, **overrides)
    return measure(selected, truth.of(*personas), truth.of(*(recall_of or personas)), truth)


def _abandoners(shop, truth, key, high: bool) -> Measured:
    # The cart_abandoner persona abandons carts that are all over $120 or all a single item under
    # $40 (plus tax); the template's $100 threshold splits them on the newest one.
    wanted = {pk for pk in truth.of("cart_abandoner")
              if pk in truth.last_abandoned_cents and (truth.last_abandoned_cents[pk] >= 10_000) == high}
    return measure(_evaluate(shop, key), wanted, wanted, truth)


def _category_loyalists(shop, truth) -> Measured:
    """The template run once per product type; a customer found for their favourite type is right."""
    loyal = truth.of("category_loyalist")
    # A replenisher buys one product of one type every time: loyal to that category by any reading.
    loyal_too = truth.of("replenisher")
    found, picks = set(), []
    for product_type in sorted({t for counts in truth.types.values() for t in counts}):
        for pk in _evaluate(shop, "category_loyalists", product_type=product_type):
            picks.append(pk)
            if (pk in loyal or pk in loyal_too) and truth.favourite_type(pk) == product_type:
                found.add(pk)
    right = sum(1 for pk in picks if pk in found)
    who = collections.Counter(truth.persona[pk] for pk in picks).most_common()
    return Measured(selected=len(picks), precision=right / max(1, len(picks)),
                    recall=len(found & loyal) / len(loyal), wanted=len(loyal), who=who)


def _replenishment_due(shop, truth) -> Measured:
    # Due by devstore's own order dates: time since the last order at least the median gap.
    due = set()
    for pk in truth.of("replenisher"):
        times = [t for t, _ in truth.orders.get(pk, [])]
        gaps = [(b - a).total_seconds() / 86_400 for a, b in zip(times, times[1:])]
        if gaps and statistics.median(gaps) > 0 and (NOW - times[-1]).total_seconds() / 86_400 >= \
                statistics.median(gaps):
            due.add(pk)
    return measure(_evaluate(shop, "replenishment_due"), due, due, truth)


def _frequent_buyers(shop, truth) -> Measured:
    # No persona: the definition itself, computed from devstore's orders (3+ orders and over $200
    # net of refunds since midnight, shop time, 90 days ago).
    zone = ZoneInfo(shop.iana_timezone)
    start = dt.datetime.combine(NOW.astimezone(zone).date() - dt.timedelta(days=90), dt.time(), zone)
    wanted = set()
    for pk, bought in truth.orders.items():
        recent = [cents for t, cents in bought if start <= t < NOW]
        if len(recent) >= 3 and sum(recent) > 20_000:
            wanted.add(pk)
    return measure(_evaluate(shop, "frequent_buyers"), wanted, wanted, truth)


def _returning_customers(shop, truth) -> Measured:
    wanted = {pk for pk, bought in truth.orders.items() if len(bought) >= 2}
    return measure(_evaluate(shop, "returning_customers"), wanted, wanted, truth)


# (case, how to measure, minimum precision, minimum recall). The history is seeded with a fixed seed
# and day, so the numbers are the same on every run; the minimums sit a few points under the
# measured values (in the comments). Where a persona is sharp the bar is 0.8 or more; where other
# personas show the same behaviour by chance, precision cannot be high whatever the rule, and the
# comment says why.
CASES = {
    # Full-price loyalists (20-100% price band, 3-8 orders) and category loyalists with premium
    # baskets are high-value repeat customers by their own behaviour: precision ~0.50.
    "high_value_repeat": (lambda s, t: _persona_case(s, t, "high_value_repeat", ("high_value_repeat", "vip"),
                                                     recall_of=("high_value_repeat",)), 0.45, 0.85),
    # The vip persona is ~2% of customers and the top 10% of buyers is five times as many: the
    # default finds every VIP (recall 1.0) and precision is ~0.23 by construction (it selects the
    # top 10% of buyers: test_vip_is_the_top_10_percent_of_buyers) ...
    "vip": (lambda s, t: _persona_case(s, t, "vip", ("vip",)), 0.2, 0.95),
    # ... while the top 2% (percentile 0.98) is the VIP persona: ~0.91 / ~0.80.
    "vip_top_2_percent": (lambda s, t: _persona_case(s, t, "vip", ("vip",), percentile="0.98"), 0.85, 0.75),
    # No persona: exactly the customers devstore's own orders say qualify.
    "frequent_buyers": (_frequent_buyers, 1.0, 1.0),
    # Sharp: 85% of a bargain hunter's orders carry a code, 15-25% of anyone else's (~0.84 / ~0.95).
    "bargain_hunters": (lambda s, t: _persona_case(s, t, "bargain_hunters", ("bargain_hunter",)), 0.8, 0.9),
    # Other personas use a code on 15-20% of orders, so 40-60% of their 3-4 order customers never
    # did: they are full-price repeat customers too, and outnumber the persona (~0.28 / 1.0).
    "full_price_loyalists": (lambda s, t: _persona_case(s, t, "full_price_loyalists", ("full_price_loyalist",)),
                             0.25, 0.95),
    # A third of casual shoppers ordered exactly once at a random time, like one-time buyers
    # (~0.67 / ~0.93; recall misses one-time buyers whose order is in the last 30 days, by design).
    "one_time_purchasers": (lambda s, t: _persona_case(s, t, "one_time_purchasers", ("one_time_buyer",)), 0.6, 0.9),
    # One-time and casual buyers who signed up and first ordered in the last 30 days are new
    # customers too (~0.80 / ~0.99).
    "new_customers": (lambda s, t: _persona_case(s, t, "new_customers", ("new_customer",)), 0.75, 0.95),
    "returning_customers": (_returning_customers, 1.0, 1.0),
    # 92% of a holiday shopper's orders fall in a holiday window; a casual customer with two orders
    # both in holiday months, in two different holidays, looks the same (~0.80 / ~0.77).
    "seasonal_holiday": (lambda s, t: _persona_case(s, t, "seasonal_holiday", ("seasonal_holiday",)), 0.75, 0.7),
    # Backfilled web orders carry no device (the GraphQL Admin API gives no client details), so
    # mobile_share is over app and POS orders only: any repeat customer whose known orders are
    # app orders matches, replenishers (no POS) most of all (~0.42 / ~0.88).
    "mobile_first": (lambda s, t: _persona_case(s, t, "mobile_first", ("mobile_first",)), 0.35, 0.8),
    # Sharp: 3-10 abandoned checkouts in the last 120 days; everyone else abandons at most a few
    # over two years (~1.0 / ~0.9; recall misses those whose newest is older than 30 days).
    "high_value_cart_abandoners": (lambda s, t: _abandoners(s, t, "high_value_cart_abandoners", True), 0.9, 0.8),
    "low_value_cart_abandoners": (lambda s, t: _abandoners(s, t, "low_value_cart_abandoners", False), 0.9, 0.8),
    # Sharp once replenishers count as loyal to their product's category (~0.85 / ~0.90).
    "category_loyalists": (_category_loyalists, 0.8, 0.85),
    # Recall of the replenishers due now (~0.94: two overdue ones, one after a skipped cycle, one
    # 1.7 intervals late, have only two orders in the last 120 days); VIPs order every few weeks
    # and are due as often, ~a third of the matches (~0.64).
    "replenishment_due": (_replenishment_due, 0.6, 0.9),
    # Every lapsing customer is found, but spread-out personas (casual, mobile-first, ...) whose
    # 2-4 orders all fell before the quiet months look exactly like them (~0.19 / ~0.99).
    "at_risk_lapsed": (lambda s, t: _persona_case(s, t, "at_risk_lapsed", ("lapsing",)), 0.15, 0.95),
    # 87% of their orders ship expedited, 35-45% of high-value repeat and VIP orders, ~18% of
    # others: two such orders by chance are not rare (~0.62 / ~0.94).
    "fastest_shipping": (lambda s, t: _persona_case(s, t, "fastest_shipping", ("fastest_shipping",)), 0.55, 0.9),
}


def test_every_purchase_template_is_measured():
    assert {t.key for t in TEMPLATES if t.family == "purchase"} <= set(CASES)


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, devstore_server):
    """Measure every case once on a seeded, backfilled shop (rolled back at the end)."""
    with seeded_shop(devstore_server, django_db_blocker, customers=CUSTOMERS, seed=SEED, now=NOW) as (shop, devstore):
        truth = truth_of(devstore, shop)
        assert len(truth.persona) == CUSTOMERS
        results = {case: measure(shop, truth) for case, (measure, _, _) in CASES.items()}
        vip_share = len(_evaluate(shop, "vip")) / truth.buyers
    return results, vip_share


@pytest.mark.django_db   # also tells pytest-django to set up the test database the fixture uses
@pytest.mark.parametrize("case", CASES)
def test_template_matches_its_persona(seeded, case):
    _, min_precision, min_recall = CASES[case]
    measured = seeded[0][case]
    assert measured.precision >= min_precision and measured.recall >= min_recall, f"{case}: {measured}"


@pytest.mark.django_db
def test_vip_is_the_top_10_percent_of_buyers(seeded):
    # Percentiles are whole percents with ties counted fully, so "0.9 or more" is about a tenth.
    assert 0.09 <= seeded[1] <= 0.11

