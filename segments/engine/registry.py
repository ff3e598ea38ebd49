"""The metric registry: every metric a segment rule may name, with its type, operators and parameters.

Rules name metrics by key and are looked up here and nowhere else. A metric's `source` says where
its value comes from: "table" metrics read a column of the per-customer metrics table (possibly
derived with `now`, see DERIVATIONS); "query" metrics are computed from the mirror's rows when a
rule is evaluated; "prediction" metrics read a column of the customer's predictions
(segments.predictions: the shop's BG/NBD and Gamma-Gamma models), NULL before the shop's first fit. A windowed metric given a window is always computed from the mirror's rows
over that window, whatever its source for all time.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from segments.engine.rfm import RFM_GROUPS, RfmGroup, rfm_group  # noqa: F401  (the registry names them)
from segments.engine.windows import HOLIDAYS

FAMILIES: tuple[str, ...] = ("purchase", "engagement", "browsing", "timing", "benefits", "predictions")

NUMERIC_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq", "between")
CHOICE_OPERATORS = ("eq", "neq", "in", "not_in")

# The operators each value type allows unless a metric narrows them.
TYPE_OPERATORS: dict[str, tuple[str, ...]] = {
    "count": NUMERIC_OPERATORS,
    "money": NUMERIC_OPERATORS,
    "ratio": NUMERIC_OPERATORS,
    "number": NUMERIC_OPERATORS,
    "days": NUMERIC_OPERATORS,
    "score": NUMERIC_OPERATORS,
    "date": ("before", "after", "between", "within_last_days"),
    "state": CHOICE_OPERATORS,
    "text": CHOICE_OPERATORS,
    "bool": ("is",),
}


@dataclass(frozen=True)
class Bounds:
    """The values a numeric type accepts: inclusive range and decimal places (0: whole numbers)."""

    minimum: Decimal
    maximum: Decimal
    places: int
    example: str = ""          # a typical value, for error messages and the editor's placeholder


TYPE_BOUNDS: dict[str, Bounds] = {
    "count": Bounds(Decimal(0), Decimal(1_000_000_000), 0, "3"),
    "days": Bounds(Decimal(0), Decimal(36_500), 0, "90"),
    "score": Bounds(Decimal(1), Decimal(5), 0, "4"),
    # The mirror's money columns are numeric(14, 2).
    "money": Bounds(Decimal(0), Decimal("999999999999.99"), 2, "19.99"),
    "ratio": Bounds(Decimal(0), Decimal(1), 4, "0.25"),
    "number": Bounds(Decimal(0), Decimal(1_000_000), 4, "1.5"),
}

# How a "table" metric's value follows from its column; None means the column as it is.
DERIVATIONS: dict[str | None, str] = {
    None: "the column's value",
    "days_since": "whole calendar days (shop time) from the column's (or a browsing metric's) timestamp to now",
    "per_order": "the column divided by orders_count",
    "replenishment": "days since last_order_at divided by the column (median_order_gap_days)",
}

# The browsing metrics read the visitor-day rollup (segments_visitorday) of the customer's browsers.
# The counts: the column each one sums.
VISIT_COLUMNS: dict[str, str] = {
    "storefront_visits": "sessions", "product_views": "product_views", "collection_views": "collection_views",
    "searches": "searches", "high_intent_searches": "high_intent_searches", "add_to_carts": "add_to_carts",
    "cart_removals": "cart_removals", "checkouts_started": "checkouts_started",
}
# The times: the earliest first event ("first") or the latest last event ("last") of all the days.
VISIT_TIMES: dict[str, str] = {"first_visit_date": "first", "days_since_first_visit": "first",
                               "days_since_last_visit": "last"}
# The arrivals: the column whose latest non-blank value (by the day's first event) each one is.
VISIT_ARRIVALS: dict[str, str] = {"referrer_site": "referrer_host", "utm_source": "utm_source",
                                  "utm_medium": "utm_medium", "utm_campaign": "utm_campaign"}

# Parameter types: "text" a non-blank string, "id" a Shopify id, "months" a set of month numbers,
# "holiday" one of HOLIDAYS.
PARAM_TYPES: tuple[str, ...] = ("text", "id", "months", "holiday")


@dataclass(frozen=True)
class Param:
    """A parameter a metric takes besides the window: which product type, which months, ..."""

    name: str
    type: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Metric:
    """One metric a rule condition can test."""

    key: str
    family: str
    label: str
    description: str
    value_type: str
    source: str                        # "table" | "query" | "prediction"
    column: str | None = None          # the metrics-table (or predictions) column of a "table" (or "prediction") metric
    derive: str | None = None          # a DERIVATIONS key: how the value follows from the column (or time)
    windowed: bool = False             # whether a condition may give a window
    params: tuple[Param, ...] = ()
    choices: tuple[str, ...] = ()      # the values of a "state" metric
    operators: tuple[str, ...] = ()    # empty: the operators of the value type

    def __post_init__(self) -> None:
        # A dataclass default cannot depend on another field; fill it in once, here.
        if not self.operators:
            object.__setattr__(self, "operators", TYPE_OPERATORS[self.value_type])

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_PRODUCT_TYPE = Param("product_type", "text", "The product type, as spelled in the shop's catalog.")
_VENDOR = Param("vendor", "text", "The vendor, as spelled in the shop's catalog.")
_PRODUCT_ID = Param("product_id", "id", "The Shopify id of the product.")
_MONTHS = Param("months", "months", "The months of the season, 1 (January) to 12 (December).")
_HOLIDAY = Param("holiday", "holiday", "The holiday: " + ", ".join(HOLIDAYS) + ".")
_TAG = Param("tag", "text", "The tag, as the merchant wrote it (case does not matter).")
_EVENT = Param("event", "text", "The custom event's name as the theme publishes it, such as app:video_played.")
_MARKETING_STATES = ("subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "invalid", "unknown")

_METRIC_LIST: tuple[Metric, ...] = (
    # Purchase
    Metric("orders_count", "purchase", "Orders",
           "Number of orders the customer placed.",
           "count", "table", "orders_count", windowed=True),
    Metric("total_spent", "purchase", "Total spent",
           "What the customer spent on orders, less refunds, in the shop's currency.",
           "money", "table", "total_spent", windowed=True),
    Metric("aov", "purchase", "Average order value",
           "Total spent divided by the number of orders.",
           "money", "table", "aov", windowed=True),
    Metric("first_order_date", "purchase", "First order date",
           "The date of the customer's first order, in the shop's timezone.",
           "date", "table", "first_order_at"),
    Metric("last_order_date", "purchase", "Last order date",
           "The date of the customer's most recent order, in the shop's timezone.",
           "date", "table", "last_order_at"),
    Metric("days_since_first_order", "purchase", "Days since first order",
           "How many days ago the customer placed their first order.",
           "days", "table", "first_order_at", derive="days_since"),
    Metric("days_since_last_order", "purchase", "Days since last order",
           "How many days ago the customer placed their most recent order.",
           "days", "table", "last_order_at", derive="days_since"),
    Metric("largest_order", "purchase", "Largest order",
           "The total of the customer's largest single order.",
           "money", "table", "largest_order", windowed=True),
    Metric("spend_percentile", "purchase", "Spend percentile",
           "Where the customer's total spend ranks among the shop's buyers, from 0 (lowest) to 1 (highest); "
           "0.9 or more is the top 10%.",
           "ratio", "table", "spend_percentile"),
    Metric("rfm_recency", "purchase", "RFM recency score",
           "1 to 5 by how recently the customer last ordered, in quintiles of the shop's buyers (5: most recent).",
           "score", "table", "rfm_recency"),
    Metric("rfm_frequency", "purchase", "RFM frequency score",
           "1 to 5 by how many orders the customer placed, in quintiles of the shop's buyers (5: most orders).",
           "score", "table", "rfm_frequency"),
    Metric("rfm_monetary", "purchase", "RFM monetary score",
           "1 to 5 by how much the customer spent, in quintiles of the shop's buyers (5: most spent).",
           "score", "table", "rfm_monetary"),
    Metric("rfm_group", "purchase", "RFM group",
           "The customer's named group from their RFM recency and frequency scores, such as champions or at risk.",
           "state", "table", "rfm_group", choices=tuple(g.name for g in RFM_GROUPS)),
    Metric("discounted_order_share", "purchase", "Share of orders with a discount",
           "The share of the customer's orders placed with a discount, from 0 to 1.",
           "ratio", "table", "discounted_orders", derive="per_order", windowed=True),
    Metric("full_price_orders", "purchase", "Full-price orders",
           "Number of the customer's orders placed without any discount.",
           "count", "table", "full_price_orders", windowed=True),
    Metric("refund_rate", "purchase", "Refund rate",
           "The share of what the customer paid that was refunded, from 0 to 1.",
           "ratio", "table", "refund_rate", windowed=True),
    Metric("product_type_share", "purchase", "Product type share",
           "The share of the customer's orders that include a product of this type, from 0 to 1.",
           "ratio", "query", windowed=True, params=(_PRODUCT_TYPE,)),
    Metric("product_type_orders", "purchase", "Orders with product type",
           "Number of the customer's orders that include a product of this type.",
           "count", "query", windowed=True, params=(_PRODUCT_TYPE,)),
    Metric("vendor_share", "purchase", "Vendor share",
           "The share of the customer's orders that include a product from this vendor, from 0 to 1.",
           "ratio", "query", windowed=True, params=(_VENDOR,)),
    Metric("vendor_orders", "purchase", "Orders with vendor",
           "Number of the customer's orders that include a product from this vendor.",
           "count", "query", windowed=True, params=(_VENDOR,)),
    Metric("product_orders", "purchase", "Orders with product",
           "Number of the customer's orders that include this product.",
           "count", "query", windowed=True, params=(_PRODUCT_ID,)),
    Metric("gross_profit", "purchase", "Gross profit", "Line revenue after discounts, less the variants' unit "
           "costs and refunds; no value if a line has no cost and no default margin is set.",
           "money", "query", windowed=True),
    Metric("gross_margin", "purchase", "Gross margin", "Gross profit as a share of line revenue after discounts "
           "and refunds, from 0 to 1.", "ratio", "query", windowed=True),
    Metric("discount_cost", "purchase", "Discount cost", "What the customer's orders were discounted in total.",
           "money", "query", windowed=True),
    Metric("distinct_product_types", "purchase", "Product types bought",
           "Number of different product types the customer has bought.",
           "count", "table", "distinct_product_types", windowed=True),
    # Engagement
    Metric("abandoned_checkouts", "engagement", "Abandoned checkouts",
           "Number of checkouts the customer started and did not complete.",
           "count", "table", "abandoned_checkouts", windowed=True),
    Metric("last_abandoned_value", "engagement", "Last abandoned checkout value",
           "The total of the customer's most recent abandoned checkout.",
           "money", "table", "last_abandoned_value"),
    Metric("days_since_last_abandoned", "engagement", "Days since last abandoned checkout",
           "How many days ago the customer last abandoned a checkout.",
           "days", "table", "last_abandoned_at", derive="days_since"),
    Metric("abandoned_not_purchased_since", "engagement", "Abandoned and not purchased since",
           "Whether the customer abandoned a checkout (inside the window, if one is given) "
           "and has ordered nothing since.",
           "bool", "table", "abandoned_not_purchased_since", windowed=True),
    Metric("cart_activity", "engagement", "Cart activity",
           "Number of online-store carts created or changed by the customer (linked through their checkouts).",
           "count", "query", windowed=True),
    Metric("email_marketing", "engagement", "Email marketing consent",
           "The customer's email marketing consent as Shopify reports it.",
           "state", "query", choices=_MARKETING_STATES),
    Metric("sms_marketing", "engagement", "SMS marketing consent",
           "The customer's SMS marketing consent as Shopify reports it.",
           "state", "query", choices=_MARKETING_STATES),
    Metric("has_tag", "engagement", "Has tag",
           "Whether the customer carries this tag in Shopify; tags this app writes are never matched.",
           "bool", "query", params=(_TAG,)),
    # Browsing (the web pixel's rollups of the customer's joined browsers; a day counts by its first event)
    *(Metric(key, "browsing", label, description, "count", "query", windowed=True)
      for key, (label, description) in {
          "storefront_visits": ("Storefront visits", "Visits to the online store (a visit ends after 30 minutes "
                                                     "without an event)."),
          "product_views": ("Product views", "Product pages the customer viewed on the online store."),
          "collection_views": ("Collection views", "Collection pages the customer viewed on the online store."),
          "searches": ("Searches", "Searches the customer ran on the online store."),
          "add_to_carts": ("Add to carts", "Times the customer added a product to their cart on the online store."),
          "cart_removals": ("Cart removals", "Times the customer removed a product from their cart."),
          "checkouts_started": ("Checkouts started", "Checkouts the customer started on the online store."),
          "high_intent_searches": ("High-intent searches", "Searches with a specific query (three words or more), "
                                   "or followed by a product view and an add to cart in the same visit."),
      }.items()),
    Metric("checkouts_without_order", "browsing", "Checkouts started without an order",
           "Checkouts the customer started on the online store less those they completed, never below 0.",
           "count", "query", windowed=True),
    Metric("browse_to_buy", "browsing", "Browse-to-buy ratio",
           "The share of the customer's storefront visits that ended in a completed checkout, from 0 to 1.",
           "ratio", "query", windowed=True),
    Metric("first_visit_date", "browsing", "First visit date",
           "The date of the customer's first visit to the online store, on any of their browsers.",
           "date", "query"),
    Metric("days_since_first_visit", "browsing", "Days since first visit",
           "How many days ago the customer first visited the online store (a few days or less: a new visitor).",
           "days", "query", derive="days_since"),
    Metric("days_since_last_visit", "browsing", "Days since last visit",
           "How many days ago the customer last visited the online store.",
           "days", "query", derive="days_since"),
    Metric("first_landing_page", "browsing", "First landing page",
           "The path of the page the customer's first visit began on, such as /collections/sale.",
           "text", "query"),
    Metric("last_landing_page", "browsing", "Last landing page",
           "The path of the page the customer's most recent visit began on, such as /products/red-scarf.",
           "text", "query"),
    Metric("referrer_site", "browsing", "Referring site",
           "The site (host name) that referred the customer's most recent visit from another site, "
           "such as www.google.com.",
           "text", "query", windowed=True),
    *(Metric(f"utm_{part}", "browsing", f"Campaign {part}",
             f"The utm_{part} of the link behind the customer's most recent visit from a campaign link.",
             "text", "query", windowed=True) for part in ("source", "medium", "campaign")),
    Metric("custom_events", "browsing", "Custom events",
           "Times the theme published this custom event for the customer, such as app:size_finder.",
           "count", "query", windowed=True, params=(_EVENT,)),
    # Timing
    Metric("season_order_share", "timing", "Share of orders in season",
           "The share of the customer's orders placed in these months, from 0 to 1.",
           "ratio", "query", windowed=True, params=(_MONTHS,)),
    Metric("holiday_order_share", "timing", "Share of orders in holiday",
           "The share of the customer's orders placed during this shopping holiday in any year, from 0 to 1.",
           "ratio", "query", windowed=True, params=(_HOLIDAY,)),
    Metric("customer_age_days", "timing", "Customer age",
           "How many days ago the customer's account was created.",
           "days", "table", "customer_created_at", derive="days_since"),
    Metric("replenishment_ratio", "timing", "Replenishment ratio",
           "Days since the last order divided by the customer's own median days between orders; "
           "1 or more means a reorder is due (needs two orders or more).",
           "number", "table", "median_order_gap_days", derive="replenishment"),
    # Benefits sought and channel
    Metric("expedited_share", "benefits", "Expedited shipping share",
           "The share of the customer's orders shipped by an expedited method (express, overnight, priority), "
           "from 0 to 1.",
           "ratio", "table", "expedited_share", windowed=True),
    Metric("discount_dependence", "benefits", "Discount dependence",
           "The share of the customer's spend that went on orders with a discount, from 0 to 1.",
           "ratio", "table", "discount_dependence", windowed=True),
    Metric("premium_share", "benefits", "Premium share",
           "The share of the customer's orders with an item priced above the shop's 75th percentile item price.",
           "ratio", "table", "premium_share", windowed=True),
    Metric("mobile_share", "benefits", "Mobile share",
           "The share of the customer's orders placed from a phone, of those whose device is known, from 0 to 1.",
           "ratio", "table", "mobile_share", windowed=True),
    Metric("desktop_share", "benefits", "Desktop share",
           "The share of the customer's orders placed from a desktop computer, of those whose device is known, "
           "from 0 to 1.",
           "ratio", "table", "desktop_share", windowed=True),
    Metric("pos_share", "benefits", "Point of sale share",
           "The share of the customer's orders placed in person at a point of sale, of those whose device is "
           "known, from 0 to 1.",
           "ratio", "table", "pos_share", windowed=True),
    Metric("source_channel", "benefits", "Main sales channel",
           "The sales channel most of the customer's orders came from, as Shopify names it "
           "(web, pos, iphone, android, shopify_draft_order or an app's id).",
           "text", "table", "top_source", windowed=True),
    # Predictions (the shop's models, refitted nightly, the customer rescored after each order)
    Metric("p_alive", "predictions", "Chance still active", "The model's probability that the customer has not "
           "quietly stopped buying, from 0 to 1 (below 0.3: likely lost).", "ratio", "prediction", "p_alive"),
    *(Metric(f"expected_orders_{days}d", "predictions", f"Expected orders, next {days} days", "How many orders "
             f"(days with an order) the model expects from the customer in the next {days} days.",
             "number", "prediction", f"orders_{days}d") for days in (30, 90, 365)),
    Metric("expected_next_order_days", "predictions", "Days until next expected order", "In how many days the "
           "model expects the customer's next order; no value when not within a year.",
           "days", "prediction", "next_order_days"),
    Metric("predicted_order_value", "predictions", "Predicted order value", "What the customer's orders are "
           "expected to be worth on average (Gamma-Gamma; their own average when the shop has too few repeat "
           "buyers to fit it).", "money", "prediction", "value_per_order"),
    Metric("predicted_clv", "predictions", "Predicted value, next 365 days", "Expected orders in the next year "
           "times the predicted order value.", "money", "prediction", "predicted_value"),
    Metric("predicted_profit", "predictions", "Predicted profit, next 365 days", "Predicted value times the "
           "customer's gross margin so far (their orders' unit costs, the shop's default margin where a product "
           "has none); no value while a cost is missing and no default margin is set.",
           "money", "prediction", "predicted_value"),
    Metric("predicted_clv_percentile", "predictions", "Predicted value percentile",
           "Where the customer's predicted value ranks among the shop's buyers, from 0 to 1 (0.8: the top 20%).",
           "ratio", "prediction", "value_percentile"),
)

METRICS: dict[str, Metric] = {m.key: m for m in _METRIC_LIST}

# The metrics table's columns, exactly as the metrics-table builder names them.
TABLE_COLUMNS: tuple[str, ...] = (
    "orders_count", "total_spent", "aov", "first_order_at", "last_order_at", "largest_order", "spend_percentile",
    "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "discounted_orders", "full_price_orders",
    "refund_rate", "distinct_product_types", "abandoned_checkouts", "last_abandoned_at", "last_abandoned_value",
    "abandoned_not_purchased_since", "median_order_gap_days", "expedited_share", "discount_dependence",
    "premium_share", "mobile_share", "desktop_share", "pos_share", "top_source", "customer_created_at",
)


def catalog() -> list[dict]:
    """The metrics as JSON-ready dicts, in registry order, for the segment editor and the API."""
    return [
        {
            "key": m.key,
            "family": m.family,
            "label": m.label,
            "description": m.description,
            "value_type": m.value_type,
            "operators": list(m.operators),
            "windowed": m.windowed,
            "params": [{"name": p.name, "type": p.type, "required": p.required, "description": p.description}
                       for p in m.params],
            "choices": list(m.choices),
            "bounds": _bounds(m.value_type),
            "source": m.source,
            "column": m.column,
        }
        for m in METRICS.values()
    ]


def _bounds(value_type: str) -> dict | None:
    bounds = TYPE_BOUNDS.get(value_type)
    if bounds is None:
        return None
    return {"minimum": str(bounds.minimum), "maximum": str(bounds.maximum), "decimal_places": bounds.places,
            "example": bounds.example}
