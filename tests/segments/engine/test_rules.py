"""Rule documents: the typed tree, every kind of refusal with its exact path, limits, round trips."""
import datetime as dt
import json
import math
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.engine.registry import METRICS, TYPE_BOUNDS
from segments.engine.rules import (
    EARLIEST_DATE, LATEST_DATE, MAX_PROBLEMS, RULES_VERSION, All, Any_, Condition, Not, Problem, RuleError, RuleSet,
    conditions, describe, parse,
)
from segments.engine.rules.tree import MAX_CONDITIONS, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ID, MAX_LIST_ITEMS, MAX_STRING
from segments.engine.windows import HOLIDAYS, Between, Holiday, LastDays, Months

# No example database: the suite leaves nothing behind in the working tree.
PROPERTY = settings(database=None, deadline=None, max_examples=300,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def doc(include, **extra):
    return {"version": RULES_VERSION, "include": include, **extra}


def cond(metric="orders_count", op="gte", value=1, **extra):
    return {"metric": metric, "op": op, "value": value, **extra}


def problems(document):
    with pytest.raises(RuleError) as caught:
        parse(document)
    return [(p.path, p.message) for p in caught.value.problems]


def only_problem(document):
    found = problems(document)
    assert len(found) == 1, found
    return found[0]


# --- the typed tree ----------------------------------------------------------------------------

FREQUENT_BUYERS = doc(
    {"all": [
        cond("orders_count", "gte", 3, window={"last_days": 90}),
        cond("total_spent", "gt", "200", window={"last_days": 90}),
    ]},
    exclude={"any": [
        cond("has_tag", "is", True, params={"tag": "wholesale"}),
        {"not": cond("email_marketing", "in", ["subscribed", "pending"])},
    ]},
)


def test_a_document_parses_into_frozen_typed_nodes():
    rules = parse(FREQUENT_BUYERS)
    assert rules == RuleSet(
        include=All((
            Condition(METRICS["orders_count"], "gte", 3, LastDays(90)),
            Condition(METRICS["total_spent"], "gt", Decimal("200.00"), LastDays(90)),
        )),
        exclude=Any_((
            Condition(METRICS["has_tag"], "is", True, params={"tag": "wholesale"}),
            Not(Condition(METRICS["email_marketing"], "in", ("subscribed", "pending"))),
        )),
    )
    with pytest.raises(AttributeError):
        rules.include = None
    # Hashable, so the compiler can memoise per node.
    assert len({rules, parse(FREQUENT_BUYERS)}) == 1


@pytest.mark.parametrize("metric, op, raw, parsed", [
    ("total_spent", "gt", 19.9, Decimal("19.90")),
    ("total_spent", "gt", "19.9", Decimal("19.90")),
    ("total_spent", "gt", 200, Decimal("200.00")),
    ("total_spent", "gt", -0.0, Decimal("0.00")),
    ("total_spent", "between", ["10", 20.5], (Decimal("10.00"), Decimal("20.50"))),
    ("refund_rate", "lte", 0.25, Decimal("0.25")),
    ("refund_rate", "lte", "1", Decimal(1)),
    ("replenishment_ratio", "gte", 1.2, Decimal("1.2")),
    ("rfm_recency", "eq", 5, 5),
    ("first_order_date", "before", "2026-01-31", dt.date(2026, 1, 31)),
    ("first_order_date", "between", ["2025-01-01", "2025-12-31"], (dt.date(2025, 1, 1), dt.date(2025, 12, 31))),
    ("last_order_date", "within_last_days", 30, 30),
    ("source_channel", "in", ["web", "pos"], ("web", "pos")),
    ("abandoned_not_purchased_since", "is", False, False),
])
def test_values_are_normalised_to_python_types(metric, op, raw, parsed):
    rules = parse(doc(cond(metric, op, raw)))
    assert rules.include.value == parsed
    assert type(rules.include.value) is type(parsed)


@pytest.mark.parametrize("window, parsed", [
    ({"last_days": 30}, LastDays(30)),
    ({"between": ["2025-11-01", "2025-12-31"]}, Between(dt.date(2025, 11, 1), dt.date(2025, 12, 31))),
    ({"months": [12, 1, 2]}, Months((1, 2, 12), years=1)),
    ({"months": [6], "years": 3}, Months((6,), years=3)),
    ({"holiday": "christmas"}, Holiday("christmas", years=1)),
    ({"holiday": "black_friday_cyber_monday", "years": 2}, Holiday("black_friday_cyber_monday", years=2)),
])
def test_windows_parse(window, parsed):
    assert parse(doc(cond(window=window))).include.window == parsed


def test_parameters_parse_and_are_read_only():
    rules = parse(doc({"all": [
        cond("season_order_share", "gte", 0.5, params={"months": [12, 11]}),
        cond("product_orders", "gte", 1, params={"product_id": 7412345678}),
        cond("holiday_order_share", "gte", 0.5, params={"holiday": "valentines"}, window={"last_days": 730}),
    ]}))
    season, product, holiday = rules.include.children
    assert dict(season.params) == {"months": (11, 12)}
    assert dict(product.params) == {"product_id": 7412345678}
    assert dict(holiday.params) == {"holiday": "valentines"} and holiday.window == LastDays(730)
    with pytest.raises(TypeError):
        season.params["months"] = (1,)


def test_an_empty_params_object_is_the_same_as_none():
    assert parse(doc(cond(params={}))) == parse(doc(cond()))


def test_conditions_walks_include_then_exclude_in_document_order():
    keys = [c.metric.key for c in conditions(parse(FREQUENT_BUYERS))]
    assert keys == ["orders_count", "total_spent", "has_tag", "email_marketing"]


def test_describe_says_what_the_rules_select():
    assert describe(parse(FREQUENT_BUYERS)) == (
        'Customers where Orders (last 90 days) is at least 3 and Total spent (last 90 days) is above 200.00, '
        'except those where Has tag (tag "wholesale"): yes or not (Email marketing consent is one of '
        '"subscribed", "pending").')


def test_describe_nests_groups_and_names_windows_and_parameters():
    rules = parse(doc({"any": [
        {"all": [cond("rfm_recency", "between", [4, 5]), cond("refund_rate", "lt", 0.1)]},
        cond("product_type_share", "gte", "0.5", params={"product_type": "Coffee"},
             window={"holiday": "christmas", "years": 2}),
        cond("orders_count", "gte", 2, window={"months": [12, 1]}),
        cond("last_order_date", "within_last_days", 30),
    ]}))
    assert describe(rules) == (
        'Customers where (RFM recency score is between 4 and 5 and Refund rate is below 0.1) or '
        'Product type share (product type "Coffee"; Christmas, last 2 years) is at least 0.5 or '
        'Orders (Jan, Dec, last year) is at least 2 or Last order date is within the last 30 days.')


def test_to_document_is_canonical():
    rules = parse(doc(cond("total_spent", "between", [10, "20.5"], window={"months": [2, 1]})))
    assert rules.to_document() == doc(
        cond("total_spent", "between", ["10.00", "20.50"], window={"months": [1, 2], "years": 1}))


@pytest.mark.parametrize("metric, raw, written", [
    ("total_spent", -0.0, "0.00"),
    ("total_spent", 5, "5.00"),
    ("refund_rate", "0.2500", "0.25"),
    ("refund_rate", 1, "1"),
    ("replenishment_ratio", 100, "100"),           # never "1E+2", which parse would refuse
    ("replenishment_ratio", "250000.5000", "250000.5"),
])
def test_decimals_are_written_as_plain_strings(metric, raw, written):
    rules = parse(doc(cond(metric, "gte", raw)))
    assert rules.to_document()["include"]["value"] == written
    assert parse(rules.to_document()) == rules


# --- refusals, each with its exact path -------------------------------------------------------

@pytest.mark.parametrize("document, path, message", [
    ([], "", "must be an object with version, include and optionally exclude"),
    ({"include": cond()}, "version", "required: 1"),
    (doc(cond()) | {"version": 2}, "version", "must be 1, the only version this server reads"),
    (doc(cond()) | {"version": True}, "version", "must be 1, the only version this server reads"),
    (doc(cond()) | {"version": "1"}, "version", "must be 1, the only version this server reads"),
    ({"version": 1}, "include", "required: a condition or a group of conditions"),
    (doc(cond(), excludes=cond()), "excludes", 'unknown key; did you mean "exclude"?'),
    (doc("orders_count > 3"), "include", "must be a condition"),
    (doc({}), "include", "must be a condition"),
    (doc({"all": []}), "include.all", "must be a non-empty list of conditions and groups"),
    (doc({"any": cond()}), "include.any", "must be a non-empty list of conditions and groups"),
    (doc({"all": [cond()], "any": [cond()]}), "include", "a group has exactly one of all, any or not"),
    (doc({"all": [cond()], "metric": "aov"}), "include", "is both a condition and a group"),
    (doc({"all": [cond()], "label": "x"}), "include.label", "unknown key"),
    (doc({"not": [cond()]}), "include.not", "must be a condition"),
    (doc({"all": [cond(), 3]}), "include.all[1]", "must be a condition"),
    (doc({"op": "gt", "value": 1}), "include.metric", "required: the key of a metric"),
    (doc(cond(metric=7)), "include.metric", "must be a string"),
    (doc(cond(metric="order_count")), "include.metric", 'unknown metric "order_count"; did you mean "orders_count"?'),
    (doc(cond(metric="lifetime_happiness")), "include.metric", "see the metric catalog"),
    (doc(cond(windw={"last_days": 3})), "include.windw", 'unknown key; did you mean "window"?'),
    (doc(cond() | {"a.b": 1}), 'include["a.b"]', "unknown key"),
    (doc({"metric": "aov", "value": 3}), "include.op", "required: one of gt, gte, lt, lte, eq, neq, between"),
    (doc(cond(op="contains")), "include.op", 'must be one of gt, gte, lt, lte, eq, neq, between for orders_count, '
                                            'not "contains"'),
    (doc(cond("email_marketing", "gt", "subscribed")), "include.op", "must be one of eq, neq, in, not_in"),
    (doc(cond("has_tag", "eq", True, params={"tag": "x"})), "include.op", "must be one of is for has_tag"),
    (doc({"metric": "aov", "op": "gt"}), "include.value", "required: a number from 0 to 999999999999.99"),
    (doc(cond(value=-1)), "include.value", "must be a whole number from 0 to 1000000000"),
    (doc(cond(value=2.5)), "include.value", "must be a whole number"),
    (doc(cond(value=3.0)), "include.value", "must be a whole number"),
    (doc(cond(value=True)), "include.value", "must be a whole number"),
    (doc(cond(value="3")), "include.value", "must be a whole number"),
    (doc(cond(value=1_000_000_001)), "include.value", "must be a whole number from 0 to 1000000000"),
    (doc(cond("days_since_last_order", "gt", 40000)), "include.value", "must be a whole number from 0 to 36500"),
    (doc(cond("rfm_monetary", "gte", 6)), "include.value", "must be a whole number from 1 to 5"),
    (doc(cond("rfm_monetary", "gte", 0)), "include.value", "must be a whole number from 1 to 5"),
    (doc(cond("aov", "gt", "12.345")), "include.value", "with at most 2 decimal places"),
    (doc(cond("aov", "gt", 12.345)), "include.value", "with at most 2 decimal places"),
    (doc(cond("aov", "gt", "1e3")), "include.value", 'a string such as "19.99"'),
    (doc(cond("aov", "gt", " 12")), "include.value", "must be a number from 0"),
    (doc(cond("aov", "gt", "twelve")), "include.value", "must be a number from 0"),
    (doc(cond("aov", "gt", -5)), "include.value", "must be a number from 0 to 999999999999.99"),
    (doc(cond("aov", "gt", 1e15)), "include.value", "must be a number from 0 to 999999999999.99"),
    (doc(cond("aov", "gt", None)), "include.value", "must be a number"),
    (doc(cond("refund_rate", "gt", 1.5)), "include.value", "must be a number from 0 to 1 with at most 4 decimal"),
    (doc(cond("refund_rate", "gt", 0.12345)), "include.value", "with at most 4 decimal places"),
    (doc(cond("refund_rate", "gt", "50%")), "include.value", 'from 0 to 1 with at most 4 decimal places, written as '
                                                            'a JSON number or a string such as "0.25"'),
    (doc(cond(op="between", value=[1])), "include.value", "must be a list of two values [low, high], each a whole"),
    (doc(cond(op="between", value=[1, 2, 3])), "include.value", "must be a list of two values"),
    (doc(cond(op="between", value={"low": 1, "high": 2})), "include.value", "must be a list of two values"),
    (doc(cond(op="between", value=[5, 2])), "include.value", "the low end must not be above the high end"),
    (doc(cond(op="between", value=[1, "x"])), "include.value[1]", "must be a whole number"),
    (doc(cond("rfm_group", "in", [])), "include.value", "must be a non-empty list of at most 500 values, each one of"),
    (doc(cond("rfm_group", "in", "champions")), "include.value", "must be a non-empty list"),
    (doc(cond("rfm_group", "in", ["champions", "winners"])), "include.value[1]",
     "must be one of champions, loyal, potential_loyalist, new, promising, needs_attention, at_risk, cannot_lose, "
     "hibernating, lost"),
    (doc(cond("rfm_group", "eq", "Champions")), "include.value", "must be one of champions, loyal"),
    (doc(cond("rfm_group", "not_in", ["lost", "lost"])), "include.value", "must not list a value twice"),
    (doc(cond("source_channel", "in", ["web"] * 2 + [str(i) for i in range(MAX_LIST_ITEMS)])), "include.value",
     "must be a non-empty list of at most 500 values"),
    (doc(cond("source_channel", "eq", "")), "include.value", "must be a non-blank string of at most 255 characters"),
    (doc(cond("source_channel", "eq", "   ")), "include.value", "must be a non-blank string"),
    (doc(cond("source_channel", "eq", "w" * (MAX_STRING + 1))), "include.value", "at most 255 characters"),
    (doc(cond("first_order_date", "before", "2026-02-30")), "include.value", "must be a date written YYYY-MM-DD"),
    (doc(cond("first_order_date", "before", "20260101")), "include.value", "must be a date written YYYY-MM-DD"),
    (doc(cond("first_order_date", "before", "2026-W01-1")), "include.value", "must be a date written YYYY-MM-DD"),
    (doc(cond("first_order_date", "after", "1989-12-31")), "include.value", "from 1990-01-01 to 2099-12-31"),
    (doc(cond("first_order_date", "after", "2100-01-01")), "include.value", "from 1990-01-01 to 2099-12-31"),
    (doc(cond("first_order_date", "between", ["2026-02-01", "2026-01-01"])), "include.value",
     "the low end must not be above the high end"),
    (doc(cond("first_order_date", "gt", "2026-01-01")), "include.op", "must be one of before, after, between, "
                                                                      "within_last_days"),
    (doc(cond("last_order_date", "within_last_days", 0)), "include.value",
     "must be a whole number of days from 1 to 3650"),
    (doc(cond("last_order_date", "within_last_days", "30")), "include.value", "must be a whole number of days"),
    (doc(cond("has_tag", "is", "yes", params={"tag": "x"})), "include.value", "must be true or false"),
    (doc(cond("has_tag", "is", 1, params={"tag": "x"})), "include.value", "must be true or false"),
    # Windows
    (doc(cond("rfm_group", "eq", "lost", window={"last_days": 30})), "include.window", "rfm_group takes no window"),
    (doc(cond(window=30)), "include.window", "must be an object with one of last_days, between, months or holiday"),
    (doc(cond(window={})), "include.window", "must have exactly one of last_days, between, months or holiday"),
    (doc(cond(window={"last_days": 3, "holiday": "christmas"})), "include.window", "must have exactly one of"),
    (doc(cond(window={"last_days": 0})), "include.window.last_days", "must be a whole number of days from 1 to 3650"),
    (doc(cond(window={"last_days": 3651})), "include.window.last_days", "from 1 to 3650"),
    (doc(cond(window={"last_days": 7.0})), "include.window.last_days", "must be a whole number of days"),
    (doc(cond(window={"between": ["2026-01-01"]})), "include.window.between",
     "must be a list of two dates [first, last], each a date written YYYY-MM-DD"),
    (doc(cond(window={"between": ["2026-03-01", "2026-01-01"]})), "include.window.between",
     "the first date must not be after the last"),
    (doc(cond(window={"between": ["2026-01-01", "1850-01-01"]})), "include.window.between[1]",
     "from 1990-01-01 to 2099-12-31"),
    (doc(cond(window={"months": []})), "include.window.months", "must be a non-empty list of month numbers"),
    (doc(cond(window={"months": 12})), "include.window.months", "must be a non-empty list of month numbers"),
    (doc(cond(window={"months": [11, 13]})), "include.window.months[1]", "must be a month number from 1 to 12"),
    (doc(cond(window={"months": [11, 11]})), "include.window.months", "must not list a month twice"),
    (doc(cond(window={"holiday": "easter"})), "include.window.holiday",
     "must be one of black_friday_cyber_monday, christmas, valentines, mothers_day"),
    (doc(cond(window={"holiday": "christmas", "years": 0})), "include.window.years",
     "must be a whole number of years from 1 to 10"),
    (doc(cond(window={"months": [1], "years": 11})), "include.window.years", "from 1 to 10"),
    (doc(cond(window={"last_days": 30, "years": 2})), "include.window.years",
     "only a months or holiday window takes years"),
    (doc(cond(window={"last_days": 30, "days": 2})), "include.window.days", "unknown key"),
    (doc(cond(window={"last_day": 30})), "include.window.last_day", 'unknown key; did you mean "last_days"?'),
    # Parameters
    (doc(cond("vendor_orders", "gte", 1)), "include.params.vendor", "required: a non-blank string"),
    (doc(cond("vendor_orders", "gte", 1, params={"vendor": "Acme", "vendr": "Acme"})), "include.params.vendr",
     'unknown parameter; did you mean "vendor"? vendor_orders takes vendor'),
    (doc(cond(params={"vendor": "Acme"})), "include.params.vendor", "unknown parameter; orders_count takes no "
                                                                    "parameters"),
    (doc(cond("vendor_orders", "gte", 1, params=["Acme"])), "include.params", "must be an object; vendor_orders "
                                                                            "takes vendor"),
    (doc(cond("product_orders", "gte", 1, params={"product_id": "123"})), "include.params.product_id",
     "must be a Shopify id from 1 to"),
    (doc(cond("product_orders", "gte", 1, params={"product_id": MAX_ID + 1})), "include.params.product_id",
     "must be a Shopify id from 1 to 9223372036854775807"),
    (doc(cond("season_order_share", "gte", 0.5, params={"months": [0]})), "include.params.months[0]",
     "must be a month number from 1 to 12"),
    (doc(cond("holiday_order_share", "gte", 0.5, params={"holiday": "Christmas"})), "include.params.holiday",
     "must be one of black_friday_cyber_monday"),
    (doc(cond("has_tag", "is", True, params={"tag": "t" * 256})), "include.params.tag", "at most 255 characters"),
])
def test_refusal_names_the_path_and_what_is_allowed(document, path, message):
    found_path, found_message = only_problem(document)
    assert found_path == path
    assert message in found_message, found_message


def test_the_path_runs_through_groups_and_lists():
    document = doc({"all": [cond(), cond(), cond(window={"last_days": 0})]})
    assert only_problem(document) == ("include.all[2].window.last_days",
                                      "must be a whole number of days from 1 to 3650")
    document = doc(cond(), exclude={"not": {"any": [cond(), {"all": [cond(metric="nope")]}]}})
    assert only_problem(document)[0] == "exclude.not.any[1].all[0].metric"


def test_every_bad_condition_is_reported_not_only_the_first():
    document = doc({"all": [
        cond(value=-1),
        cond("aov", "gt", 5),
        cond("rfm_group", "eq", "vip", window={"last_days": 9}),
        cond(metric="unknown"),
    ]}, exclude=cond(op="like"))
    assert [path for path, _ in problems(document)] == [
        "include.all[0].value", "include.all[2].value", "include.all[2].window", "include.all[3].metric",
        "exclude.op"]


def test_several_problems_in_one_condition_are_all_reported():
    document = doc(cond("vendor_share", "above", "x", window={"last_days": -1}, colour="red"))
    assert [path for path, _ in problems(document)] == [
        "include.colour", "include.op", "include.window.last_days", "include.params.vendor"]


def test_problems_are_capped():
    document = doc({"any": [cond(value=-i - 1) for i in range(MAX_CONDITIONS)]})
    found = problems(document)
    assert len(found) == MAX_PROBLEMS
    assert found[-1][0] == f"include.any[{MAX_PROBLEMS - 1}].value"


def test_the_error_reads_as_paths_and_messages_and_serialises():
    with pytest.raises(RuleError) as caught:
        parse(doc(cond(window={"last_days": 0})))
    assert str(caught.value) == "include.window.last_days: must be a whole number of days from 1 to 3650"
    assert [p.to_dict() for p in caught.value.problems] == [
        {"path": "include.window.last_days", "message": "must be a whole number of days from 1 to 3650"}]
    assert str(Problem("", "is too big")) == "(document): is too big"


# --- limits ------------------------------------------------------------------------------------

def nested(levels):
    node = cond()
    for _ in range(levels - 1):
        node = {"all": [node]}
    return node


def test_nesting_up_to_the_limit_parses():
    rules = parse(doc(nested(MAX_DEPTH)))
    assert len(list(conditions(rules))) == 1


def test_nesting_past_the_limit_is_refused_at_the_first_level_too_deep():
    path = "include" + ".all[0]" * MAX_DEPTH
    assert only_problem(doc(nested(MAX_DEPTH + 1))) == (
        path, f"nested too deeply: at most {MAX_DEPTH} levels of groups and conditions")
    chain = cond()
    for _ in range(MAX_DEPTH):
        chain = {"not": chain}
    assert only_problem(doc(chain))[0] == "include" + ".not" * MAX_DEPTH


def test_conditions_up_to_the_limit_parse():
    half = MAX_CONDITIONS // 2
    rules = parse(doc({"all": [cond()] * half}, exclude={"any": [cond()] * (MAX_CONDITIONS - half)}))
    assert len(list(conditions(rules))) == MAX_CONDITIONS


def test_conditions_past_the_limit_are_refused_across_include_and_exclude():
    half = MAX_CONDITIONS // 2
    document = doc({"all": [cond()] * half}, exclude={"any": [cond()] * (MAX_CONDITIONS - half + 1)})
    assert only_problem(document) == ("", f"has {MAX_CONDITIONS + 1} conditions; at most {MAX_CONDITIONS} are allowed")


def test_the_condition_limit_comes_first_among_problems():
    document = doc({"all": [cond(value=-1)] * (MAX_CONDITIONS + 1)})
    found = problems(document)
    assert found[0] == ("", f"has {MAX_CONDITIONS + 1} conditions; at most {MAX_CONDITIONS} are allowed")
    assert len(found) == MAX_PROBLEMS


def test_documents_over_64_kb_are_refused_before_anything_else():
    values = [f"channel-{i:03d}-" + "x" * 200 for i in range(MAX_LIST_ITEMS)]
    document = doc(cond("source_channel", "in", values))
    size = len(json.dumps(document, separators=(",", ":")).encode())
    assert size > MAX_DOCUMENT_BYTES
    assert only_problem(document) == ("", f"is {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES} are allowed")


def test_size_is_counted_in_utf8_bytes_not_characters():
    # 200 three-byte characters per value: under 64 K characters, over 64 KB.
    values = [f"{i:03d}" + "€" * 200 for i in range(110)]
    document = doc(cond("source_channel", "in", values))
    assert len(json.dumps(document, ensure_ascii=False, separators=(",", ":"))) < MAX_DOCUMENT_BYTES
    assert only_problem(document)[0] == ""


@pytest.mark.parametrize("document", [
    doc(cond(value=float("nan"))),
    doc(cond(value=math.inf)),
    doc(cond("source_channel", "in", {"web"})),
    doc(cond(value=dt.date(2026, 1, 1))),
    {("version",): 1},
])
def test_what_json_cannot_say_is_refused(document):
    assert only_problem(document) == ("", "must be JSON: objects, lists, strings, numbers, true, false and null")


def test_a_cyclic_document_is_refused():
    document = doc({"all": []})
    document["include"]["all"].append(document)
    assert only_problem(document)[0] == ""


def test_tuples_read_as_lists():
    assert parse(doc(cond(op="between", value=(1, 2)))).include.value == (1, 2)


def test_list_limit_allows_exactly_500():
    values = [str(i) for i in range(MAX_LIST_ITEMS)]
    assert len(parse(doc(cond("source_channel", "not_in", values))).include.value) == MAX_LIST_ITEMS


# --- the reference's examples -----------------------------------------------------------------

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def reference_blocks(info):
    """The JSON code blocks of docs/rules.md fenced as ```<info>."""
    return [json.loads(block) for block in re.findall(rf"^```{info}\n(.*?)^```$", REFERENCE.read_text(), re.M | re.S)]


def test_the_references_examples_parse():
    examples = reference_blocks("json")
    assert len(examples) >= 10
    for example in examples:
        assert parse(example).to_document()


def test_the_references_refused_example_gives_the_problems_it_shows():
    [refused], [shown] = reference_blocks("json rejected"), reference_blocks("json problems")
    with pytest.raises(RuleError) as caught:
        parse(refused)
    assert [p.to_dict() for p in caught.value.problems] == shown


# --- properties --------------------------------------------------------------------------------

VOCABULARY = ["version", "include", "exclude", "all", "any", "not", "metric", "op", "value", "window", "params",
              "last_days", "between", "months", "holiday", "years", "product_type", "vendor", "product_id", "tag",
              *METRICS, *HOLIDAYS, "gt", "gte", "between", "in", "is", "before", "within_last_days"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(VOCABULARY))
keys = st.sampled_from(VOCABULARY) | st.text(max_size=8)
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=40)
# What a Python caller might pass that JSON cannot say.
python_like = st.recursive(
    scalars | st.decimals() | st.dates() | st.builds(object),
    lambda inner: st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=2)
    | st.dictionaries(st.integers() | keys, inner, max_size=3),
    max_leaves=10)
near_documents = st.fixed_dictionaries({"version": st.just(1) | json_like, "include": json_like},
                                       optional={"exclude": json_like})


def check_parse_outcome(document):
    try:
        rules = parse(document)
    except RuleError as exc:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
        assert len(exc.problems) <= MAX_PROBLEMS
    else:
        assert parse(rules.to_document()) == rules


@PROPERTY
@given(st.one_of(json_like, near_documents, python_like))
def test_parse_raises_nothing_but_rule_error(document):
    check_parse_outcome(document)


def decimal_values(value_type):
    bounds = TYPE_BOUNDS[value_type]
    return st.decimals(min_value=bounds.minimum, max_value=bounds.maximum, places=bounds.places,
                       allow_nan=False, allow_infinity=False)


def typed_values(metric):
    """Python values of the metric's type (sortable, for between)."""
    value_type = metric.value_type
    if value_type in ("count", "days", "score"):
        bounds = TYPE_BOUNDS[value_type]
        return st.integers(int(bounds.minimum), int(bounds.maximum))
    if value_type in ("money", "ratio", "number"):
        return decimal_values(value_type)
    if value_type == "date":
        return st.dates(EARLIEST_DATE, LATEST_DATE)
    if value_type == "state":
        return st.sampled_from(metric.choices)
    if value_type == "bool":
        return st.booleans()
    return st.text(min_size=1, max_size=MAX_STRING).filter(str.strip)


def as_json(value, draw):
    """One of the JSON spellings parse accepts for a typed value."""
    if isinstance(value, Decimal):
        return draw(st.sampled_from([str(value), float(value)] + ([int(value)] if value == int(value) else [])))
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@st.composite
def values_for(draw, metric, op):
    if op == "is":
        return draw(st.booleans())
    if op == "within_last_days":
        return draw(st.integers(1, 3650))
    if op == "between":
        low, high = sorted(draw(st.lists(typed_values(metric), min_size=2, max_size=2)))
        return [as_json(low, draw), as_json(high, draw)]
    if op in ("in", "not_in"):
        items = draw(st.lists(typed_values(metric), min_size=1, max_size=4, unique=True))
        return [as_json(item, draw) for item in items]
    return as_json(draw(typed_values(metric)), draw)


month_sets = st.lists(st.integers(1, 12), min_size=1, max_size=12, unique=True)
windows = st.one_of(
    st.builds(lambda days: {"last_days": days}, st.integers(1, 3650)),
    st.lists(st.dates(EARLIEST_DATE, LATEST_DATE), min_size=2, max_size=2).map(
        lambda pair: {"between": [d.isoformat() for d in sorted(pair)]}),
    st.builds(lambda months, years: {"months": months, **years}, month_sets,
              st.just({}) | st.builds(lambda n: {"years": n}, st.integers(1, 10))),
    st.builds(lambda holiday, years: {"holiday": holiday, **years}, st.sampled_from(HOLIDAYS),
              st.just({}) | st.builds(lambda n: {"years": n}, st.integers(1, 10))),
)
PARAM_VALUES = {
    "text": st.text(min_size=1, max_size=MAX_STRING).filter(str.strip),
    "id": st.integers(1, MAX_ID),
    "months": month_sets,
    "holiday": st.sampled_from(HOLIDAYS),
}


@st.composite
def valid_conditions(draw):
    metric = draw(st.sampled_from(list(METRICS.values())))
    op = draw(st.sampled_from(metric.operators))
    condition = {"metric": metric.key, "op": op, "value": draw(values_for(metric, op))}
    if metric.windowed and draw(st.booleans()):
        condition["window"] = draw(windows)
    if metric.params:
        condition["params"] = {p.name: draw(PARAM_VALUES[p.type]) for p in metric.params}
    return condition


def valid_nodes(levels):
    if levels == 1:
        return valid_conditions()
    inner = valid_nodes(levels - 1)
    return st.one_of(
        valid_conditions(),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    )


valid_documents = st.fixed_dictionaries({"version": st.just(RULES_VERSION), "include": valid_nodes(4)},
                                        optional={"exclude": valid_nodes(3)})


def objects_in(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from objects_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from objects_in(item)


@st.composite
def damaged_documents(draw):
    """A valid document with one key of one of its objects set to arbitrary JSON."""
    document = draw(valid_documents)
    target = draw(st.sampled_from(list(objects_in(document))))
    target[draw(keys)] = draw(json_like)
    return document


@PROPERTY
@given(damaged_documents())
def test_damaged_documents_raise_nothing_but_rule_error(document):
    check_parse_outcome(document)


@PROPERTY
@given(valid_documents)
def test_valid_documents_parse_and_round_trip(document):
    rules = parse(document)
    assert parse(rules.to_document()) == rules
    assert rules.to_document() == parse(rules.to_document()).to_document()
    assert describe(rules).startswith("Customers where ")


@PROPERTY
@given(valid_documents)
def test_to_document_is_plain_json(document):
    canonical = parse(document).to_document()
    text = json.dumps(canonical, allow_nan=False)
    assert json.loads(text) == canonical
    assert parse(json.loads(text)) == parse(document)
