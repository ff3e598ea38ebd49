"""The metric registry: complete, consistent with the value types, and the column names the table uses."""
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from segments.engine.registry import (
    DERIVATIONS, FAMILIES, METRICS, PARAM_TYPES, RFM_GROUPS, TABLE_COLUMNS, TYPE_BOUNDS, TYPE_OPERATORS, VISIT_TIMES,
    catalog, rfm_group,
)
from segments.engine.windows import HOLIDAYS
from segments.predictions.models import CustomerPrediction

DOCS = Path(__file__).resolve().parents[3] / "docs" / "rules.md"

# Every metric the issue names, under the keys the rest of the engine and the templates use.
ISSUE_METRICS = (
    "orders_count", "total_spent", "aov", "first_order_date", "last_order_date", "days_since_first_order",
    "days_since_last_order", "largest_order", "spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary",
    "rfm_group", "discounted_order_share", "full_price_orders", "refund_rate", "product_type_share",
    "product_type_orders", "vendor_share", "vendor_orders", "product_orders", "distinct_product_types",
    "abandoned_checkouts", "last_abandoned_value", "days_since_last_abandoned", "abandoned_not_purchased_since",
    "cart_activity", "email_marketing", "sms_marketing", "has_tag", "season_order_share", "holiday_order_share",
    "customer_age_days", "replenishment_ratio", "expedited_share", "discount_dependence", "premium_share",
    "mobile_share", "desktop_share", "pos_share", "source_channel",
    # profit (issue 20), from the variants' unit costs
    "gross_profit", "gross_margin", "discount_cost",
    # the storefront's (issue 18), from the web pixel's rollups
    "storefront_visits", "product_views", "collection_views", "searches", "add_to_carts", "cart_removals",
    "checkouts_started", "high_intent_searches", "checkouts_without_order", "browse_to_buy", "first_visit_date",
    "days_since_first_visit", "days_since_last_visit", "first_landing_page", "last_landing_page", "referrer_site",
    "utm_source", "utm_medium", "utm_campaign", "custom_events",
    # per-customer predictions (issue 20), from the shop's fitted models
    "p_alive", "expected_orders_30d", "expected_orders_90d", "expected_orders_365d", "expected_next_order_days",
    "predicted_order_value", "predicted_clv", "predicted_profit", "predicted_clv_percentile",
)


def test_every_metric_the_issue_names_is_registered_and_nothing_else():
    assert set(METRICS) == set(ISSUE_METRICS)


@pytest.mark.parametrize("key", sorted(METRICS))
def test_metric_is_well_formed(key):
    metric = METRICS[key]
    assert metric.key == key and re.fullmatch(r"[a-z][a-z0-9_]*", key)
    assert metric.family in FAMILIES
    assert metric.label.strip() and metric.label[0].isupper()
    # One sentence, shown as is under the metric in the editor.
    assert metric.description.endswith(".") and metric.description.count(". ") == 0
    assert metric.value_type in TYPE_OPERATORS
    assert metric.operators and set(metric.operators) <= set(TYPE_OPERATORS[metric.value_type])
    assert bool(metric.choices) == (metric.value_type == "state")
    assert len(set(metric.choices)) == len(metric.choices)
    assert [p.name for p in metric.params] == list(dict.fromkeys(p.name for p in metric.params))
    assert all(p.type in PARAM_TYPES and p.description for p in metric.params)


@pytest.mark.parametrize("key", sorted(METRICS))
def test_metric_source_names_a_table_column_or_none(key):
    metric = METRICS[key]
    assert metric.source in ("table", "query", "prediction")
    assert metric.derive in DERIVATIONS
    if metric.source == "table":
        assert metric.column in TABLE_COLUMNS
    elif metric.source == "prediction":     # a column of the predictions, read as stored
        assert metric.column in {f.column for f in CustomerPrediction._meta.fields} and metric.derive is None
    else:   # a browsing time (VISIT_TIMES) derives days since it, as a table column would
        assert metric.column is None and metric.derive == ("days_since" if key.startswith("days_since") and
                                                           key in VISIT_TIMES else None)


def test_table_metrics_read_distinct_columns_and_every_column_is_read():
    table = [m for m in METRICS.values() if m.source == "table"]
    # Two metrics may share a column only when they derive different values from it.
    reads = [(m.column, m.derive) for m in table]
    assert len(reads) == len(set(reads))
    assert {m.column for m in table} == set(TABLE_COLUMNS)
    assert len(TABLE_COLUMNS) == len(set(TABLE_COLUMNS))


def test_days_since_metrics_derive_from_date_columns():
    for metric in METRICS.values():
        if metric.derive == "days_since":
            assert metric.value_type == "days" and (metric.key in VISIT_TIMES or metric.column.endswith("_at"))


def test_numeric_types_have_bounds_and_others_do_not():
    numeric = {t for t, ops in TYPE_OPERATORS.items() if "gt" in ops}
    assert set(TYPE_BOUNDS) == numeric
    for bounds in TYPE_BOUNDS.values():
        example = Decimal(bounds.example)
        assert bounds.minimum <= example <= bounds.maximum and bounds.places >= 0
        assert example == example.quantize(Decimal(1).scaleb(-bounds.places))


@pytest.mark.parametrize("key, param, param_type", [
    ("product_type_share", "product_type", "text"), ("product_type_orders", "product_type", "text"),
    ("vendor_share", "vendor", "text"), ("vendor_orders", "vendor", "text"),
    ("product_orders", "product_id", "id"), ("season_order_share", "months", "months"),
    ("holiday_order_share", "holiday", "holiday"), ("has_tag", "tag", "text"),
])
def test_parameterised_metrics_require_their_parameter(key, param, param_type):
    metric = METRICS[key]
    assert [(p.name, p.type, p.required) for p in metric.params] == [(param, param_type, True)]
    assert metric.source == "query"


def test_windows_only_where_a_window_means_something():
    assert not any(METRICS[k].windowed for k in (
        "first_order_date", "last_order_date", "days_since_first_order", "days_since_last_order", "rfm_group",
        "rfm_recency", "spend_percentile", "customer_age_days", "email_marketing", "has_tag"))
    assert all(METRICS[k].windowed for k in ("orders_count", "total_spent", "abandoned_checkouts",
                                             "product_type_share", "mobile_share"))


def test_every_pair_of_rfm_scores_falls_in_exactly_one_group():
    for recency in range(1, 6):
        for frequency in range(1, 6):
            holders = [g.name for g in RFM_GROUPS
                       if g.recency[0] <= recency <= g.recency[1] and g.frequency[0] <= frequency <= g.frequency[1]]
            assert holders == [rfm_group(recency, frequency)], (recency, frequency)
    reached = {rfm_group(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert reached == {g.name for g in RFM_GROUPS} == set(METRICS["rfm_group"].choices)


@pytest.mark.parametrize("recency, frequency, group", [
    (5, 5, "champions"), (4, 5, "loyal"), (5, 1, "new"), (4, 1, "promising"), (5, 3, "potential_loyalist"),
    (3, 2, "needs_attention"), (1, 4, "at_risk"), (2, 5, "cannot_lose"), (2, 1, "hibernating"), (1, 1, "lost"),
])
def test_rfm_groups(recency, frequency, group):
    assert rfm_group(recency, frequency) == group


@pytest.mark.parametrize("recency, frequency", [(0, 3), (6, 3), (3, 0), (3, 6)])
def test_rfm_scores_outside_1_to_5_are_refused(recency, frequency):
    with pytest.raises(ValueError):
        rfm_group(recency, frequency)


def test_catalog_is_json_in_registry_order_with_what_the_editor_needs():
    entries = json.loads(json.dumps(catalog()))
    assert [e["key"] for e in entries] == list(METRICS)
    share = next(e for e in entries if e["key"] == "product_type_share")
    assert share["operators"] == ["gt", "gte", "lt", "lte", "eq", "neq", "between"]
    assert share["bounds"] == {"minimum": "0", "maximum": "1", "decimal_places": 4, "example": "0.25"}
    assert share["params"][0]["name"] == "product_type" and share["windowed"] is True
    holiday = next(e for e in entries if e["key"] == "holiday_order_share")
    assert all(name in holiday["params"][0]["description"] for name in HOLIDAYS)
    consent = next(e for e in entries if e["key"] == "email_marketing")
    assert "subscribed" in consent["choices"] and consent["bounds"] is None


def test_the_reference_documents_every_metric_and_rfm_group():
    text = DOCS.read_text()
    missing = [key for key in METRICS if f"`{key}`" not in text]
    missing += [g.name for g in RFM_GROUPS if f"`{g.name}`" not in text]
    assert missing == []
