"""The SQL compiler against the plain-Python reference on random stores and random rule sets.

Each example writes a random store into a new shop, rebuilds its metrics table, draws a random
valid rule document whose values lie near the store's own values (so both outcomes occur), and
requires segments.engine.compiler.evaluate to pick exactly the customers
tests.segments.engine.reference picks, for the whole shop and for a random subset of its customers,
and evaluate_visitors the anonymous visitors it picks.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.segments.engine.reference import Reference, reference_members, reference_values
from segments.engine.registry import METRICS, TYPE_BOUNDS, Metric
from segments.engine.rules import EARLIEST_DATE, LATEST_DATE, RuleSet, parse
from segments.engine.windows import HOLIDAYS
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from tests.segments.engine.stores import (
    CUSTOM_EVENTS, MONEY, PRODUCT_IDS, PRODUCT_TYPES, SOURCES, TAGS, VENDORS, Store, build, stores, utc,
)

pytestmark = pytest.mark.django_db

# NOW: a plain day; 04:30 UTC on Christmas Eve (the 23rd in New York, Christmas Eve in Kolkata and
# Auckland); the last evening of Black Friday-Cyber Monday 2026 in UTC (December in Auckland).
NOWS = (utc(2026, 6, 1, 16, 0), utc(2025, 12, 24, 4, 30), utc(2026, 11, 30, 23, 0))
MAX_DEPTH = 3

# -- rule documents -----------------------------------------------------------------------------------


def _days_around(now: dt.datetime) -> st.SearchStrategy[dt.date]:
    today = now.date()
    return st.one_of(st.integers(-10, 1200), st.integers(-3, 12)).map(lambda n: today - dt.timedelta(days=n))


def windows(now: dt.datetime) -> st.SearchStrategy[dict]:
    dates = _days_around(now)
    years = st.one_of(st.none(), st.integers(1, 4))

    def with_years(window: dict, n: int | None) -> dict:
        return window if n is None else {**window, "years": n}

    return st.one_of(
        st.builds(lambda n: {"last_days": n}, st.one_of(st.sampled_from((1, 2, 7, 30, 90, 365, 730)),
                                                        st.integers(1, 3650))),
        st.builds(lambda a, b: {"between": sorted([a.isoformat(), b.isoformat()])}, dates, dates),
        st.builds(lambda ms, n: with_years({"months": ms}, n),
                  st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True), years),
        st.builds(lambda h, n: with_years({"holiday": h}, n), st.sampled_from(HOLIDAYS), years),
    )


def params_for(metric: Metric) -> st.SearchStrategy[dict]:
    parts = {}
    for param in metric.params:
        match param.name:
            case "product_type":
                parts[param.name] = st.sampled_from([t for t in PRODUCT_TYPES if t] + ["Nothing"])
            case "vendor":
                parts[param.name] = st.sampled_from([v for v in VENDORS if v] + ["Nobody"])
            case "product_id":
                parts[param.name] = st.sampled_from(PRODUCT_IDS + (999,))
            case "months":
                parts[param.name] = st.lists(st.integers(1, 12), min_size=1, max_size=5, unique=True)
            case "holiday":
                parts[param.name] = st.sampled_from(HOLIDAYS)
            case "tag":
                parts[param.name] = st.sampled_from(TAGS + ("Vip ", "nothing", "SEG:VIP"))
            case "event":
                parts[param.name] = st.sampled_from(CUSTOM_EVENTS + ("app:nothing",))
            case _:
                raise AssertionError(f"no strategy for parameter {param.name}")
    return st.fixed_dictionaries(parts)


def _ratio_text(value: float, places: int = 4) -> list[str]:
    """4-place decimals at and around a float: exact when it is one, else the two neighbours."""
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(-places)
    down = exact.quantize(step, rounding="ROUND_FLOOR")
    return [str(v) for v in {down, down + step, down - step}]


def _clamp(value, low, high):
    return min(max(value, low), high)


def scalars(metric: Metric, observed: list, now: dt.datetime) -> st.SearchStrategy:
    """JSON values for one end of a comparison, near the observed values where there are some."""
    kind = metric.value_type
    seen = [v for v in observed if v is not None]
    bounds = TYPE_BOUNDS.get(kind)

    def near(strategy, extra):
        return st.one_of(strategy, extra) if seen else extra

    match kind:
        case "count" | "days" | "score":
            low, high = int(bounds.minimum), int(bounds.maximum)
            around = st.builds(lambda v, d: _clamp(v + d, low, high), st.sampled_from(seen or [0]),
                               st.sampled_from((-1, 0, 0, 1)))
            wide = st.integers(low, min(high, 1200 if kind == "days" else 12))
            return near(around, wide)
        case "money":
            around = st.builds(lambda v, d: str(_clamp(v + d, Decimal(0), bounds.maximum)),
                               st.sampled_from(seen or [Decimal(0)]),
                               st.sampled_from((Decimal("-0.01"), Decimal(0), Decimal(0), Decimal("0.01"))))
            vocabulary = st.one_of(st.sampled_from(MONEY), st.sampled_from((0, 10, 50, 100)))
            return near(around, vocabulary)
        case "ratio" | "number":
            high = float(bounds.maximum)
            texts = sorted({t for v in seen for t in _ratio_text(_clamp(float(v), 0.0, high))
                            if Decimal(0) <= Decimal(t) <= bounds.maximum})
            around = st.sampled_from(texts or ["0"]).flatmap(
                lambda t: st.sampled_from((t, float(t))) if Decimal(t) == Decimal(repr(float(t))) else st.just(t))
            fixed = st.sampled_from((0, 1, 0.5, "0.25", "0.3333", "0.6667", 0.1, "0.75") if kind == "ratio"
                                    else (0, 1, 2, 0.5, "1.5", "0.75", 10))
            return near(around, fixed)
        case "date":
            around = st.builds(lambda v, d: _clamp(v + dt.timedelta(days=d), EARLIEST_DATE, LATEST_DATE).isoformat(),
                               st.sampled_from(seen or [now.date()]), st.sampled_from((-1, 0, 0, 1)))
            return near(around, _days_around(now).map(dt.date.isoformat))
        case "state":
            return st.sampled_from(metric.choices)
        case "text":
            return st.sampled_from(sorted({s for s in SOURCES if s} | {"WEB", "unknown"} | set(seen)))
        case "bool":
            return st.booleans()
    raise AssertionError(f"no strategy for value type {kind}")


def _sorted_pair(kind: str, a, b) -> list:
    key = (lambda v: Decimal(str(v))) if kind in ("money", "ratio", "number") else (lambda v: v)
    return sorted([a, b], key=key)


def comparisons(metric: Metric, observed: list, ref: Reference, now: dt.datetime) -> st.SearchStrategy[dict]:
    def build(op: str) -> st.SearchStrategy[dict]:
        one = scalars(metric, observed, now)
        match op:
            case "between":
                value = st.builds(lambda a, b: _sorted_pair(metric.value_type, a, b), one, one)
            case "in" | "not_in":
                value = st.lists(one, min_size=1, max_size=3, unique_by=lambda v: str(Decimal(str(v)))
                                 if isinstance(v, (int, float)) else v)
            case "within_last_days":
                ages = sorted({(ref.today - d).days for d in observed if d is not None})
                around = st.builds(lambda v, d: _clamp(v + d, 1, 3650), st.sampled_from(ages or [1]),
                                   st.sampled_from((-1, 0, 1)))
                value = st.one_of(around, st.integers(1, 1200)) if ages else st.integers(1, 1200)
            case _:
                value = one
        return value.map(lambda v: {"op": op, "value": v})
    return st.sampled_from(metric.operators).flatmap(build)


@st.composite
def conditions(draw, ref: Reference, now: dt.datetime) -> dict:
    metric = draw(st.sampled_from(list(METRICS.values())))
    window = draw(st.one_of(st.none(), windows(now))) if metric.windowed else None
    params = draw(params_for(metric))
    parsed = parse({"version": 1, "include": {"metric": metric.key, "op": metric.operators[0],
                                              "value": _any_value(metric), **_extra(window, params)}})
    probe = parsed.include
    observed = [ref.value(probe, pk) for pk in ref.customer_ids]
    comparison = draw(comparisons(metric, observed, ref, now))
    return {"metric": metric.key, **comparison, **_extra(window, params)}


def _extra(window, params) -> dict:
    extra = {}
    if window is not None:
        extra["window"] = window
    if params:
        extra["params"] = params
    return extra


def _any_value(metric: Metric):
    """A valid value for the metric's first operator (to parse a probe condition)."""
    return {"count": 0, "days": 0, "score": 1, "money": 0, "ratio": 0, "number": 0, "date": "2026-01-01",
            "state": metric.choices[0] if metric.choices else "", "text": "web", "bool": True}[metric.value_type]


def nodes(ref: Reference, now: dt.datetime, depth: int = 1) -> st.SearchStrategy[dict]:
    leaf = conditions(ref, now)
    if depth >= MAX_DEPTH:
        return leaf
    inner = st.deferred(lambda: nodes(ref, now, depth + 1))
    return st.one_of(
        leaf, leaf,
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    )


def documents(ref: Reference, now: dt.datetime) -> st.SearchStrategy[dict]:
    return st.builds(
        lambda include, exclude: {"version": 1, "include": include, **({"exclude": exclude} if exclude else {})},
        nodes(ref, now), st.one_of(st.none(), st.none(), nodes(ref, now, 2)))


# -- the property -------------------------------------------------------------------------------------


def explain(ruleset: RuleSet, shop, now: dt.datetime) -> str:
    values = reference_values(ruleset, shop=shop, now=now)
    return "\n".join(f"  customer {pk}: {row!r}" for pk, row in sorted(values.items()))


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(store=stores(), neighbour=stores(max_customers=3, max_orders=3), now=st.sampled_from(NOWS), data=st.data())
def test_the_compiler_picks_the_customers_the_reference_picks(store, neighbour, now, data):
    from segments.engine.compiler import evaluate, evaluate_visitors
    from segments.storefront.models import Visitor

    with transaction.atomic():
        shop = build(store, now)
        other = build(neighbour, now)       # another shop's rows, which must count for nothing here
        customer_metrics_rebuild(shop=shop, now=now)
        customer_metrics_rebuild(shop=other, now=now)
        ref = Reference(shop=shop, now=now)
        document = data.draw(documents(ref, now), label="document")
        ruleset = parse(document)
        note(f"document: {json.dumps(document)}")
        expected = ref.members(ruleset)
        note(f"reference values (conditions in document order):\n{explain(ruleset, shop, now)}")

        assert evaluate(ruleset, shop=shop, now=now) == expected

        every = list(Customer.objects.filter(shop__in=(shop, other)).values_list("pk", flat=True)) + [2**62]
        subset = data.draw(st.sets(st.sampled_from(every)), label="customer_ids")
        assert evaluate(ruleset, shop=shop, now=now, customer_ids=sorted(subset)) == expected & subset

        # Anonymous visitors: customers without history or account, browsing on their own.
        visitors = ref.visitor_members(ruleset)
        assert evaluate_visitors(ruleset, shop=shop, now=now) == visitors
        every = list(Visitor.objects.filter(shop__in=(shop, other)).values_list("pk", flat=True)) + [2**62]
        subset = data.draw(st.sets(st.sampled_from(every)), label="visitor_ids")
        assert evaluate_visitors(ruleset, shop=shop, now=now, visitor_ids=sorted(subset)) == visitors & subset
        transaction.set_rollback(True)


# -- disagreements with the reference, kept as plain examples -------------------------------------------
# has_tag compares "ignoring case and surrounding spaces". The compiler lower-cases and strips the
# parameter in Python (str.lower, str.strip) but the tags in SQL (lower, btrim), and the two differ
# outside ASCII letters and spaces: a tag can fail to match the very same text given as parameter.
# (The random stores' tags are ASCII, so the property above does not meet these.)


def _has_tag_case(tag: str, param: str):
    from segments.engine.compiler import evaluate

    s = Store()
    customer = s.customer(created_at=NOWS[0] - dt.timedelta(days=10), tags=[tag])
    customer_metrics_rebuild(shop=s.shop, now=NOWS[0])
    ruleset = parse({"version": 1, "include": {"metric": "has_tag", "op": "is", "value": True,
                                               "params": {"tag": param}}})
    expected = reference_members(ruleset, shop=s.shop, now=NOWS[0])
    return expected, evaluate(ruleset, shop=s.shop, now=NOWS[0]), customer.pk


def test_has_tag_greek_capitals_match_themselves():
    # Python lower-cases a word-final capital sigma to "ς", PostgreSQL's lower() to "σ".
    expected, got, pk = _has_tag_case("ΣΊΣΥΦΟΣ", "ΣΊΣΥΦΟΣ")
    assert expected == {pk}
    assert got == expected


def test_has_tag_dotted_capital_i_matches_itself():
    # Python lower-cases "İ" to "i" + U+0307 (two characters), PostgreSQL's lower() to "i".
    expected, got, pk = _has_tag_case("İstanbul", "İstanbul")
    assert expected == {pk}
    assert got == expected


def test_has_tag_with_a_trailing_tab_matches_itself():
    # str.strip() drops the tab from the parameter; btrim() keeps it on the tag.
    expected, got, pk = _has_tag_case("vip\t", "vip\t")
    assert expected == {pk}
    assert got == expected


# -- the builder's dry-run over the same statement ---------------------------------------------------------


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(store=stores(), neighbour=stores(max_customers=3, max_orders=3), now=st.sampled_from(NOWS), data=st.data())
def test_the_dry_run_counts_and_samples_the_customers_the_reference_picks(store, neighbour, now, data):
    # Given a random store, a segment holding a random set of its customers, and a random windowed rule
    from segments.membership.definitions import segment_dry_run
    from segments.membership.models import Membership, Segment

    with transaction.atomic():
        shop = build(store, now)
        other = build(neighbour, now)
        customer_metrics_rebuild(shop=shop, now=now)
        customer_metrics_rebuild(shop=other, now=now)
        ref = Reference(shop=shop, now=now)
        window = data.draw(windows(now), label="window")
        document = data.draw(documents(ref, now), label="document")
        document["include"] = {"all": [document["include"],
                                       {"metric": "orders_count", "op": "gte", "value": 1, "window": window}]}
        note(f"document: {json.dumps(document)}")
        expected = ref.members(parse(document))
        evaluated = set(Customer.objects.filter(shop=shop, deleted_at__isnull=True).values_list("pk", flat=True))
        segment = Segment.objects.create(shop=shop, name="Held", handle="held")
        held = data.draw(st.sets(st.sampled_from(sorted(evaluated))) if evaluated else st.just(set()), label="held")
        Membership.objects.bulk_create([Membership(shop=shop, segment=segment, customer_id=pk, entered_at=now,
                                                   version=1) for pk in held])

        # When the builder previews the rules as an edit of the segment
        result = segment_dry_run(shop=shop, rules=document, segment=segment, now=now, sample=3)

        # Then the counts and the samples are the reference's
        assert (result["size"], result["evaluated"]) == (len(expected), len(evaluated))
        assert (result["entries"], result["exits"]) == (len(expected - held), len(held & evaluated - expected))
        samples = {name: [card["id"] for card in cards] for name, cards in result["sample"].items()}
        assert samples == {"members": sorted(expected)[:3], "entries": sorted(expected - held)[:3],
                           "exits": sorted(held & evaluated - expected)[:3]}
        transaction.set_rollback(True)
