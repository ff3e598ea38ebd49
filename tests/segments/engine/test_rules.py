"""Rule documents: the typed tree, every kind of refusal with its exact path, limits, round trips."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings

from segments.engine.registry import METRICS
from segments.engine.rules import (
    MAX_PROBLEMS, RULES_VERSION, All, Any_, Condition, Not, Problem, RuleError, RuleSet, conditions, describe, parse,
)
from segments.engine.rules.tree import MAX_CONDITIONS, MAX_ID, MAX_LIST_ITEMS, MAX_STRING
from segments.engine.windows import Between, Holiday, LastDays, Months

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
