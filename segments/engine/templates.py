"""Segment templates: rule documents a merchant starts from, each with a one-line "why".

A template is only a starting point: `template_document(key, **overrides)` copies its rules, fills
in the values the merchant is expected to tweak (the template's `editable` entries, by name) and
returns the canonical document, checked by `rules.parse`. The merchant may then edit anything.

Every template with a `persona` is tested against the development store generator
(devstore): on a seeded store, backfilled into the mirror, the template's members are
compared with the generator's ground-truth persona of each customer
(tests/segments/engine/test_templates.py, which also says how sharp each match can be). The
browsing templates' personas are those of devstore's shoppers (devstore.shoppers), whose month of
browsing comes in through the pixel's ingest (tests/segments/engine/test_browsing_templates.py).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from segments.engine.rules import parse

# The shopping holidays in pairs, for "bought during two different holidays".
_HOLIDAYS = ("black_friday_cyber_monday", "christmas", "valentines", "mothers_day")
_HOLIDAY_PAIRS = tuple((a, b) for i, a in enumerate(_HOLIDAYS) for b in _HOLIDAYS[i + 1:])
# The calendar months the holidays fall in: Valentine's (Feb), Mother's Day (late Apr to early
# May), Black Friday-Cyber Monday (Nov), the Christmas run-up (Dec).
HOLIDAY_MONTHS = [2, 4, 5, 11, 12]


class Editable(NamedTuple):
    """A value the merchant is expected to tweak: where it is in the rules, what to call it in a
    form, and the keyword of `template_document` that fills it. Several entries may share a name
    (one window used by two conditions): the keyword fills them all."""

    path: str
    label: str
    name: str


@dataclass(frozen=True)
class Template:
    """A named rule document to start a segment from."""

    key: str
    name: str
    why: str                         # one line: what the merchant would use the segment for
    rules: dict = field(hash=False)  # the rule document in canonical form; read it, never change it
    persona: str | None              # the devstore persona it targets, None when there is no single one
    tag_handle: str                  # the tag's suffix: seg:<tag_handle>
    editable: tuple[Editable, ...] = ()
    persona_note: str = ""           # how the template relates to the persona, when not one-to-one
    family: str = "purchase"         # "browsing": built on what the web pixel sees

    def document(self, **overrides: object) -> dict:
        return template_document(self.key, **overrides)


def _c(metric: str, op: str, value: object, *, window: dict | None = None, params: dict | None = None) -> dict:
    condition: dict = {"metric": metric, "op": op, "value": value}
    if window is not None:
        condition["window"] = window
    if params is not None:
        condition["params"] = params
    return condition


def _doc(include: dict, exclude: dict | None = None) -> dict:
    document = {"version": 1, "include": include}
    if exclude is not None:
        document["exclude"] = exclude
    return document


def _t(key: str, name: str, why: str, rules: dict, persona: str | None, editable: tuple[Editable, ...] = (),
       persona_note: str = "", family: str = "purchase") -> Template:
    return Template(key=key, name=name, why=why, rules=copy.deepcopy(rules), persona=persona,
                    tag_handle=key.replace("_", "-"), editable=editable, persona_note=persona_note, family=family)


def _browsing(*args, **kwargs) -> Template:
    return _t(*args, **kwargs, family="browsing")


_LAST_30 = {"last_days": 30}


_CART_ABANDONERS = (
    # The newest abandoned checkout is in the last 30 days and nothing was bought after it ...
    _c("abandoned_not_purchased_since", "is", True, window={"last_days": 30}),
    # ... and it is not a one-off: two or more abandoned checkouts in the last 90 days.
    _c("abandoned_checkouts", "gte", 2, window={"last_days": 90}),
)
_ABANDONER_EDITABLE = (
    Editable("include.all[2].value", "Cart value threshold", "threshold"),
    Editable("include.all[0].window.last_days", "Abandoned within (days)", "days"),
)

TEMPLATES: tuple[Template, ...] = (
    _t("high_value_repeat", "High-value repeat customers",
       "Your best regulars: four or more orders and in the top 15% by spend; reward them, ask for reviews.",
       _doc({"all": [_c("orders_count", "gte", 4), _c("spend_percentile", "gte", "0.85")]}),
       "high_value_repeat",
       (Editable("include.all[0].value", "Orders at least", "min_orders"),
        Editable("include.all[1].value", "Spend percentile at least (0.85: the top 15%)", "percentile")),
       "VIPs (the vip persona) are high-value repeat customers too and match as well."),
    _t("vip", "VIP (top 10% by spend)",
       "The customers who bring in the most revenue: early access, gifts, a personal touch.",
       _doc(_c("spend_percentile", "gte", "0.9")),
       "vip",
       (Editable("include.value", "Spend percentile at least (0.9: the top 10%)", "percentile"),),
       "The vip persona is the top ~2% of the shop; the top 10% holds all of them and the richest "
       "high-value repeat customers. Raise the percentile to 0.98 to isolate them."),
    _t("frequent_buyers", "Frequent buyers",
       "Three or more orders and over $200 in the last 90 days: your engaged core right now.",
       _doc({"all": [_c("orders_count", "gte", 3, window={"last_days": 90}),
                     _c("total_spent", "gt", "200.00", window={"last_days": 90})]}),
       None,
       (Editable("include.all[0].value", "Orders at least", "min_orders"),
        Editable("include.all[1].value", "Spent more than", "amount"),
        Editable("include.all[0].window.last_days", "Over the last (days)", "days"),
        Editable("include.all[1].window.last_days", "Over the last (days)", "days")),
       "No single persona: mostly replenishers and VIPs, whose rhythm puts three orders in 90 days."),
    _t("bargain_hunters", "Bargain hunters",
       "Most of their orders use a discount: target them with sales, keep them off full-price campaigns.",
       _doc({"all": [_c("orders_count", "gte", 3), _c("discounted_order_share", "gte", "0.6")]}),
       "bargain_hunter",
       (Editable("include.all[1].value", "Share of orders with a discount at least", "share"),)),
    _t("full_price_loyalists", "Full-price loyalists",
       "Three or more orders and never a discount code: don't train them to wait for sales.",
       _doc({"all": [_c("full_price_orders", "gte", 3), _c("discounted_order_share", "eq", "0")]}),
       "full_price_loyalist",
       (Editable("include.all[0].value", "Full-price orders at least", "min_orders"),),
       "Other repeat customers who happen never to have used a code match as well."),
    _t("one_time_purchasers", "One-time purchasers",
       "Bought once, more than 30 days ago, and never came back: a second-order nudge.",
       _doc({"all": [_c("orders_count", "eq", 1), _c("days_since_first_order", "gt", 30)]}),
       "one_time_buyer",
       (Editable("include.all[1].value", "First order more than (days) ago", "days"),),
       "Casual shoppers with a single order behave the same way and match as well."),
    _t("new_customers", "New customers",
       "Signed up and placed a first order in the last 30 days: welcome series, first-purchase follow-up.",
       _doc({"all": [_c("first_order_date", "within_last_days", 30), _c("customer_age_days", "lte", 30)]}),
       "new_customer",
       (Editable("include.all[0].value", "First order within the last (days)", "days"),
        Editable("include.all[1].value", "Account created within the last (days)", "days"))),
    _t("returning_customers", "Returning customers",
       "Came back for a second order or more: the customers your retention works on.",
       _doc(_c("orders_count", "gte", 2)),
       None,
       (Editable("include.value", "Orders at least", "min_orders"),),
       "No single persona: every persona with two orders or more."),
    _t("seasonal_holiday", "Seasonal and holiday shoppers",
       "Nearly all orders in holiday months, across two different holidays: reach them before the next one.",
       _doc({"all": [
           _c("orders_count", "gte", 2),
           _c("season_order_share", "gte", "0.9", params={"months": HOLIDAY_MONTHS}),
           {"any": [{"all": [_c("orders_count", "gte", 1, window={"holiday": a, "years": 2}),
                             _c("orders_count", "gte", 1, window={"holiday": b, "years": 2})]}
                    for a, b in _HOLIDAY_PAIRS]},
       ]}),
       "seasonal_holiday",
       (Editable("include.all[1].value", "Share of orders in holiday months at least", "share"),
        Editable("include.all[1].params.months", "Holiday months", "months"))),
    _t("mobile_first", "Mobile-first shoppers",
       "Order from their phone and not in person: mobile layouts, SMS and app campaigns.",
       _doc({"all": [_c("mobile_share", "gte", "0.75"), _c("orders_count", "gte", 2),
                     {"not": _c("pos_share", "gt", "0")}]}),
       "mobile_first",
       (Editable("include.all[0].value", "Share of orders from a phone at least", "share"),),
       "Device is known only for app and point-of-sale orders in backfilled history (web orders "
       "carry no device), so any repeat customer whose known orders are all app orders matches too."),
    _t("high_value_cart_abandoners", "High-value cart abandoners",
       "Keep abandoning checkouts, the latest worth $100 or more in the last 30 days: worth a personal recovery.",
       _doc({"all": [*_CART_ABANDONERS, _c("last_abandoned_value", "gte", "100.00")]}),
       "cart_abandoner", _ABANDONER_EDITABLE,
       "The cart_abandoner persona split by the value of their carts: the high-value half."),
    _t("low_value_cart_abandoners", "Low-value cart abandoners",
       "Keep abandoning checkouts, the latest under $100 in the last 30 days: a light reminder or free shipping.",
       _doc({"all": [*_CART_ABANDONERS, _c("last_abandoned_value", "lt", "100.00")]}),
       "cart_abandoner", _ABANDONER_EDITABLE,
       "The cart_abandoner persona split by the value of their carts: the low-value half."),
    _t("category_loyalists", "Category loyalists",
       "Buy one category again and again: new arrivals and bundles in that category.",
       _doc({"all": [_c("orders_count", "gte", 3),
                     _c("product_type_share", "gte", "0.8", params={"product_type": "Coffee"}),
                     _c("distinct_product_types", "lte", 3)]}),
       "category_loyalist",
       (Editable("include.all[1].params.product_type", "Category (product type)", "product_type"),
        Editable("include.all[1].value", "Share of orders with the category at least", "share")),
       "Pick the category. Replenishers, who reorder one product, are loyal to its category and match too."),
    _t("replenishment_due", "Replenishment due",
       "Reorder on a rhythm and are now at or past their usual interval: remind them before they buy elsewhere.",
       _doc({"all": [_c("orders_count", "gte", 3, window={"last_days": 120}),
                     _c("replenishment_ratio", "gte", "1")]}),
       "replenisher",
       (Editable("include.all[1].value", "Days since last order over their usual gap at least", "ratio"),),
       "Only the replenishers due now (about a third at any moment); VIPs ordering every few weeks "
       "are due as often and match as well."),
    _t("at_risk_lapsed", "At risk / lapsed",
       "Ordered at least twice but not in the last 180 days: a win-back offer before they are gone.",
       _doc({"all": [_c("orders_count", "gte", 2), _c("days_since_last_order", "gt", 180)]}),
       "lapsing",
       (Editable("include.all[1].value", "No order for more than (days)", "days"),),
       "Any repeat customer whose orders happen to end six months ago matches as well."),
    _t("fastest_shipping", "Fastest-shipping seekers",
       "Usually pay for express or overnight shipping: lead with delivery speed, upsell expedited options.",
       _doc({"all": [_c("orders_count", "gte", 2), _c("expedited_share", "gte", "0.6")]}),
       "fastest_shipping",
       (Editable("include.all[1].value", "Share of orders shipped expedited at least", "share"),)),
    # Browsing: what shoppers do on the storefront (the web pixel), for customers it has joined.
    _browsing("browse_heavy_low_purchase", "Browse-heavy, low-purchase",
              "View product after product, no order in 90 days: reviews, social proof, a first-order nudge.",
              _doc({"all": [_c("product_views", "gte", 20, window=_LAST_30),
                            _c("orders_count", "eq", 0, window={"last_days": 90})]}),
              "browse_heavy",
              (Editable("include.all[0].value", "Product views at least", "min_views"),
               Editable("include.all[0].window.last_days", "Over the last (days)", "days")),
              "Browse-heavy shoppers who did order in the last 90 days are left out on purpose."),
    _browsing("high_intent_visitors", "High-intent visitors",
              "Search for something specific, or search, view and add to cart: ready to buy; show stock and delivery.",
              _doc(_c("high_intent_searches", "gte", 2, window=_LAST_30)),
              "high_intent",
              (Editable("include.value", "High-intent searches at least", "min_searches"),
               Editable("include.window.last_days", "Over the last (days)", "days"))),
    _browsing("new_visitors", "New visitors",
              "First visited the store in the last 7 days: a welcome, the bestsellers, how the shop works.",
              _doc(_c("days_since_first_visit", "lte", 7)),
              None,
              (Editable("include.value", "First visit within the last (days)", "days"),),
              "No persona: any shopper whose first visit was this week, whatever they do."),
    _browsing("returning_non_buyers", "Returning non-buyers",
              "Back three times or more in 30 days, first came over a week ago, no order in 90 days.",
              _doc({"all": [_c("storefront_visits", "gte", 3, window=_LAST_30),
                            _c("days_since_first_visit", "gt", 7),
                            _c("orders_count", "eq", 0, window={"last_days": 90})]}),
              None,
              (Editable("include.all[0].value", "Visits at least", "min_visits"),),
              "No persona: any frequent visitor who has not ordered lately, whatever they do on the store."),
    _browsing("window_shoppers", "Window shoppers",
              "Add to cart again and again, never start a checkout: a cart reminder, a free-shipping threshold.",
              _doc({"all": [_c("add_to_carts", "gte", 2, window=_LAST_30),
                            _c("checkouts_started", "eq", 0, window=_LAST_30)]}),
              "window_shopper",
              (Editable("include.all[0].value", "Add to carts at least", "min_adds"),
               Editable("include.all[0].window.last_days", "Over the last (days)", "days"),
               Editable("include.all[1].window.last_days", "Over the last (days)", "days"))),
    _browsing("category_browsers", "Category browsers",
              "Keep walking the collection pages: new arrivals and bestsellers from the categories they browse.",
              _doc(_c("collection_views", "gte", 8, window=_LAST_30)),
              "category_browser",
              (Editable("include.value", "Collection views at least", "min_views"),
               Editable("include.window.last_days", "Over the last (days)", "days"))),
    _browsing("ad_driven_visitors", "Ad-driven visitors by campaign",
              "Came from this campaign's links in the last 30 days: carry the ad's promise through to checkout.",
              _doc(_c("utm_campaign", "eq", "winter_sale", window=_LAST_30)),
              "campaign",
              (Editable("include.value", "Campaign (its utm_campaign)", "campaign"),
               Editable("include.window.last_days", "Over the last (days)", "days")),
              "Pick the campaign. Any shopper whose latest campaign visit came by its links matches."),
    # Predictions (issue 20): the shop's fitted models read every customer's history.
    _t("likely_to_churn", "Likely to churn, high value",
       "The model says they have probably stopped buying, yet they rank high on predicted value: win them back.",
       _doc({"all": [_c("p_alive", "lt", "0.3"), _c("predicted_clv_percentile", "gte", "0.8")]}), None,
       (Editable("include.all[0].value", "Chance still active below", "p_alive"),
        Editable("include.all[1].value", "Predicted value percentile at least", "percentile")),
       "No persona: the models' reading of each history (lapsed frequent buyers land here).", family="predictions"),
    _t("ordering_soon", "Expected to order soon",
       "Likely still active and expected to order within two weeks: be there first with what they buy.",
       _doc({"all": [_c("expected_next_order_days", "lte", 14), _c("p_alive", "gte", "0.5")]}), None,
       (Editable("include.all[0].value", "Next order expected within (days)", "days"),
        Editable("include.all[1].value", "Chance still active at least", "p_alive")),
       "No persona: the models' reading of each history (replenishers and frequent buyers land here).",
       family="predictions"),
)

TEMPLATE_BY_KEY: MappingProxyType = MappingProxyType({t.key: t for t in TEMPLATES})

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    """'include.all[1].params.product_type' -> ['include', 'all', 1, 'params', 'product_type']."""
    steps: list[str | int] = []
    for part in path.split("."):
        pos = 0
        for match in _STEP.finditer(part):
            if match.start() != pos:
                raise ValueError(f"bad path {path!r}")
            steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
            pos = match.end()
        if pos != len(part) or not part:
            raise ValueError(f"bad path {path!r}")
    return steps


def _set(document: dict, path: str, value: object) -> None:
    *parents, last = _steps(path)
    node = document
    for step in parents:
        node = node[step]
    node[last] = value


def template_document(key: str, **overrides: object) -> dict:
    """The template's rule document with `overrides` filled in, in canonical form.

    Overrides are named by the template's editable entries (`threshold="150.00"`,
    `product_type="Tea"`). An unknown key or name raises KeyError / TypeError; a value the rules do
    not allow raises rules.RuleError naming its path.
    """
    template = TEMPLATE_BY_KEY[key]
    names = {e.name for e in template.editable}
    unknown = sorted(set(overrides) - names)
    if unknown:
        allowed = ", ".join(sorted(names)) or "none"
        raise TypeError(f"template {key!r} has no editable value {', '.join(unknown)}; it has: {allowed}")
    document = copy.deepcopy(template.rules)
    for entry in template.editable:
        if entry.name in overrides:
            _set(document, entry.path, copy.deepcopy(overrides[entry.name]))
    return parse(document).to_document()
