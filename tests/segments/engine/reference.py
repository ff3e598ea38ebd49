"""A plain-Python reference evaluator of segment rules, for tests.

It implements docs/rules.md, section "Evaluation", as directly as it can be written: the shop's
mirror rows are loaded with the ORM and every condition's metric is computed per customer in
Python loops, from the definitions in segments.engine.metrics_table's docstring (predictions, fitted
elsewhere, are read as stored). Nothing is read from the metrics table except which customers have a
row (those are evaluated), so a test comparing this with the SQL compiler (segments.engine.compiler)
checks the compiler's reading of the table as well as its own queries.

Clarity over speed: a shop of a few dozen customers is what it is meant for.

Readings of the spec where it could be read two ways (each also at the place it is used):

- `abandoned_not_purchased_since` always has a value: false when there is no abandoned checkout
  (in the window), as the table's column is (NOT NULL, default false). So `is false` matches a
  customer who never abandoned anything.
- `within_last_days N` has no upper end: a date after today (an order timestamped in the future)
  is "on or after today - N days" and matches.
- `has_tag`: a tag is the app's own when, stripped of surrounding spaces, tabs and line breaks
  (TAG_SPACE) and lower-cased, it
  starts with the shop's tag prefix (default "seg:"); such tags never match, so neither does a
  parameter that starts with it.
- `cart_activity`: distinct carts whose token is the cart token of any of the customer's checkouts
  (completed, abandoned, deleted or not yet abandoned: any checkout row), each counted once however
  many checkouts name it. A checkout without a cart token has "" (the mirror's blank), which links
  to nothing, not even a cart stored with an empty token.
- Browsing metrics: computed from the visitor-days of every browser joined to the customer (with a
  window, the days whose first event lies in it): counts sum a column; landing pages, the referring
  site and the UTM values are the non-blank value of the earliest or latest day by first event, ties
  to the lowest or highest value by code point; days since a visit read the earliest first event or
  the latest last event.
- Shop-relative values (spend percentile, RFM scores and group, the premium price) are computed
  from the definitions over the shop's live customers, exactly as a full rebuild ranks them; after
  an incremental refresh they may differ from the table by design.
- Money ratios (refund_rate, discount_dependence) are exact decimal quotients rounded once to the
  nearest double; count ratios are int / int (the nearest double of the exact quotient).
- The median gap behind `replenishment_ratio` interpolates two middle gaps as the table's SQL does
  on PostgreSQL (percentile_cont: low + 0.5 * (high - low)), not as (low + high) / 2; the two can
  differ in the last binary place, which only a rule value equal to the exact ratio can notice.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from segments.engine.compiler import TAG_SPACE
from segments.engine.context import OWNED_TAG_PREFIX
from segments.engine.metrics_table import PREMIUM_POSITION
from segments.engine.registry import METRICS, VISIT_ARRIVALS, VISIT_COLUMNS, Metric, rfm_group
from segments.engine.rules import All, Any_, Condition, Node, Not, RuleSet, conditions
from segments.engine.windows import Window, holiday_windows, resolve_window
from segments.metrics.models import CustomerMetrics
from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order, VariantCost
from segments.predictions.models import CustomerPrediction
from segments.shops.models import Shop
from segments.storefront.models import Visitor, VisitorDay
from tests.segments.engine.reference_compare import (
    _day_value, compare, inside_intervals, is_discounted, median_gap_days, nearest_rank, net_of,
)
from tests.segments.engine.reference_profit import profit_value

CENT = Decimal("0.01")
EXPEDITED = "expedited"
UNKNOWN_DEVICE = "unknown"


def reference_members(ruleset: RuleSet, *, shop: Shop, now: dt.datetime) -> set[int]:
    """The primary keys of the shop's customers in the segment at `now`."""
    return Reference(shop=shop, now=now).members(ruleset)


def reference_values(ruleset: RuleSet, *, shop: Shop, now: dt.datetime) -> dict[int, list]:
    """Per evaluated customer, each condition's metric value (None: no value), in
    rules.conditions(ruleset) order. For explaining a disagreement."""
    ref = Reference(shop=shop, now=now)
    listed = list(conditions(ruleset))
    return {pk: [ref.value(c, pk) for c in listed] for pk in ref.customer_ids}


@dataclass
class _Buyer:
    """What the shop-relative rankings need of one customer with orders."""

    total_spent: Decimal
    last_order_at: dt.datetime
    orders_count: int


@dataclass
class _CustomerRows:
    customer: Customer
    orders: list[Order] = field(default_factory=list)          # counted orders, by (created_at, pk)
    checkouts: list[Checkout] = field(default_factory=list)    # every checkout row of the customer
    abandoned: list[Checkout] = field(default_factory=list)    # abandoned ones, by (created_at, pk)


class Reference:
    """The shop's mirror at `now`, loaded once; evaluates conditions and rule sets against it."""

    def __init__(self, *, shop: Shop, now: dt.datetime) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime")
        self.shop = shop
        self.now = now
        self.tz = shop.iana_timezone
        self.zone = ZoneInfo(self.tz)
        self.today = self._local_date(now)

        live = {c.pk: _CustomerRows(c) for c in Customer.objects.filter(shop=shop, deleted_at__isnull=True)}
        self.rows = live
        with_metrics = set(CustomerMetrics.objects.filter(shop=shop).values_list("customer_id", flat=True))
        # Who is evaluated: live customers with a metrics row.
        self.customer_ids: list[int] = sorted(pk for pk in live if pk in with_metrics)

        # Line items of every order of the shop (guest, cancelled, deleted customers' included: the
        # premium price describes the shop's price points).
        self.lines: dict[int, list[LineItem]] = {}
        prices: list[Decimal] = []
        for line in LineItem.objects.filter(shop=shop).order_by("pk"):
            self.lines.setdefault(line.order_id, []).append(line)
            prices.append(line.price)
        self.premium_price = nearest_rank(sorted(prices), PREMIUM_POSITION)

        # Counted orders: not cancelled, with a customer (of this shop's live customers, for us).
        for order in Order.objects.filter(shop=shop, cancelled_at__isnull=True, customer__isnull=False):
            if order.customer_id in live:
                live[order.customer_id].orders.append(order)
        abandoned_before = now - dt.timedelta(minutes=shop.checkout_abandon_minutes)
        for checkout in Checkout.objects.filter(shop=shop, customer__isnull=False):
            if checkout.customer_id not in live:
                continue
            live[checkout.customer_id].checkouts.append(checkout)
            if (checkout.completed_at is None and checkout.deleted_at is None
                    and checkout.created_at <= abandoned_before):
                live[checkout.customer_id].abandoned.append(checkout)
        for rows in live.values():
            rows.orders.sort(key=lambda o: (o.created_at, o.pk))
            rows.abandoned.sort(key=lambda k: (k.created_at, k.pk))
        self.carts: dict[str, Cart] = {cart.token: cart for cart in Cart.objects.filter(shop=shop)}
        self.predictions = {p.customer_id: p for p in CustomerPrediction.objects.filter(shop=shop)}
        self.costs = dict(VariantCost.objects.filter(shop=shop, variant_id__isnull=False).values_list("variant_id", "unit_cost"))
        self.visit_days: dict[int, list[VisitorDay]] = {}
        for day in VisitorDay.objects.filter(shop=shop, visitor__customer__isnull=False).select_related("visitor"):
            self.visit_days.setdefault(day.visitor.customer_id, []).append(day)
        # Anonymous visitors, under the negated visitor id: a customer without history or account
        # (no tags, consent unknown) whose only browser is the visitor.
        self.visitor_ids: list[int] = sorted(Visitor.objects.filter(shop=shop, customer__isnull=True)
                                             .values_list("pk", flat=True))
        for visitor_id in self.visitor_ids:
            self.rows[-visitor_id] = _CustomerRows(Customer(shop=shop, tags=[], created_at=None))
            self.visit_days[-visitor_id] = list(VisitorDay.objects.filter(visitor_id=visitor_id))

        # The rankings' population: the shop's live customers with orders (a full rebuild's buyers).
        self.buyers: list[_Buyer] = [
            _Buyer(total_spent=net_of(rows.orders), last_order_at=rows.orders[-1].created_at,
                   orders_count=len(rows.orders))
            for rows in live.values() if rows.orders]

    # -- rule sets ----------------------------------------------------------------------------
    def members(self, ruleset: RuleSet, customer_ids: Iterable[int] | None = None) -> set[int]:
        wanted = None if customer_ids is None else set(customer_ids)
        pks = [pk for pk in self.customer_ids if wanted is None or pk in wanted]
        return {pk for pk in pks
                if self.node_matches(ruleset.include, pk)
                and not (ruleset.exclude is not None and self.node_matches(ruleset.exclude, pk))}

    def visitor_members(self, ruleset: RuleSet) -> set[int]:
        """The anonymous visitors (their ids) in the segment."""
        return {visitor_id for visitor_id in self.visitor_ids
                if self.node_matches(ruleset.include, -visitor_id)
                and not (ruleset.exclude is not None and self.node_matches(ruleset.exclude, -visitor_id))}

    def node_matches(self, node: Node, pk: int) -> bool:
        match node:
            case All(children=children):
                return all(self.node_matches(child, pk) for child in children)
            case Any_(children=children):
                return any(self.node_matches(child, pk) for child in children)
            case Not(child=child):
                return not self.node_matches(child, pk)
            case Condition():
                return self.matches(node, pk)
        raise TypeError(f"not a node: {node!r}")

    def matches(self, condition: Condition, pk: int) -> bool:
        return compare(condition, self.value(condition, pk), today=self.today)

    # -- metric values ------------------------------------------------------------------------
    def value(self, condition: Condition, pk: int) -> object:
        return self.metric_value(condition.metric, pk, window=condition.window, params=condition.params)

    def metric_value(self, metric: Metric | str, pk: int, *, window: Window | None = None,
                     params: dict | None = None) -> object:
        """The metric's value for customer `pk` (None: no value), over `window` if given."""
        key = metric if isinstance(metric, str) else metric.key
        if key == "predicted_profit":       # predicted value times the customer's gross margin so far
            value, margin = self.metric_value("predicted_clv", pk), self.metric_value("gross_margin", pk)
            return None if value is None or margin is None else float(value) * margin
        if METRICS[key].source == "prediction":
            stored = self.predictions.get(pk)
            return None if stored is None else getattr(stored, METRICS[key].column)
        params = dict(params or {})
        rows = self.rows[pk]
        customer = rows.customer
        intervals = resolve_window(window, now=self.now, tz=self.tz) if window is not None else None
        orders = [o for o in rows.orders if inside_intervals(o.created_at, intervals)]
        abandoned = [k for k in rows.abandoned if inside_intervals(k.created_at, intervals)]
        n = len(orders)

        match key:
            # -- purchase
            case "orders_count":
                return n
            case "total_spent":
                return net_of(orders)
            case "aov":
                # ROUND(spent / orders_count, 2): half away from zero, as PostgreSQL rounds numerics.
                return (net_of(orders) / n).quantize(CENT, ROUND_HALF_UP) if n else None
            case "first_order_date":
                return self._local_date(orders[0].created_at) if n else None
            case "last_order_date":
                return self._local_date(orders[-1].created_at) if n else None
            case "days_since_first_order":
                return self._days_since(orders[0].created_at) if n else None
            case "days_since_last_order":
                return self._days_since(orders[-1].created_at) if n else None
            case "largest_order":
                return max(o.total for o in orders) if n else None
            case "spend_percentile":
                if not n:
                    return None
                spent = net_of(orders)
                at_most = sum(1 for b in self.buyers if b.total_spent <= spent)
                return (100 * at_most // len(self.buyers)) / 100
            case "rfm_recency":
                return self._score(orders, "last_order_at", orders[-1].created_at if n else None)
            case "rfm_frequency":
                return self._score(orders, "orders_count", n)
            case "rfm_monetary":
                return self._score(orders, "total_spent", net_of(orders))
            case "rfm_group":
                if not n:
                    return None
                recency = self._score(orders, "last_order_at", orders[-1].created_at)
                frequency = self._score(orders, "orders_count", n)
                return rfm_group(recency, frequency)
            case "discounted_order_share":
                return sum(1 for o in orders if is_discounted(o)) / n if n else None
            case "full_price_orders":
                return sum(1 for o in orders if not is_discounted(o))
            case "refund_rate":
                gross = sum((o.total for o in orders), Decimal(0))
                refunded = sum((o.total_refunded for o in orders), Decimal(0))
                return float(refunded / gross) if gross > 0 else None
            case "product_type_share" | "vendor_share":
                attribute = "product_type" if key == "product_type_share" else "vendor"
                hits = self._orders_with(orders, attribute, params[attribute])
                return hits / n if n else None
            case "product_type_orders":
                return self._orders_with(orders, "product_type", params["product_type"])
            case "vendor_orders":
                return self._orders_with(orders, "vendor", params["vendor"])
            case "product_orders":
                return self._orders_with(orders, "product_id", params["product_id"])
            case "gross_profit" | "gross_margin" | "discount_cost":
                return profit_value(key, orders, self.lines, self.costs, self.shop.default_margin_percent)
            case "distinct_product_types":
                return len({line.product_type for o in orders for line in self.lines.get(o.pk, [])
                            if line.product_type})
            # -- engagement
            case "abandoned_checkouts":
                return len(abandoned)
            case "last_abandoned_value":
                return abandoned[-1].total if abandoned else None
            case "days_since_last_abandoned":
                return self._days_since(abandoned[-1].created_at) if abandoned else None
            case "abandoned_not_purchased_since":
                # Never NULL (the table's column is false without an abandoned checkout). The
                # orders are all of the customer's, whatever the window: "ordered nothing since".
                if not abandoned:
                    return False
                newest = abandoned[-1].created_at
                return not any(o.created_at > newest for o in rows.orders)
            case "cart_activity":
                tokens = {k.cart_token for k in rows.checkouts if k.cart_token != ""}
                carts = [self.carts[t] for t in tokens if t in self.carts]
                return sum(1 for cart in carts
                           if inside_intervals(cart.updated_at if cart.updated_at is not None else cart.created_at,
                                               intervals))
            case "email_marketing":
                return customer.email_marketing
            case "sms_marketing":
                return customer.sms_marketing
            case "has_tag":
                wanted = params["tag"].strip(TAG_SPACE).lower()
                for tag in customer.tags or []:
                    if not isinstance(tag, str):
                        continue
                    normal = tag.strip(TAG_SPACE).lower()
                    if normal.startswith((self.shop.tag_prefix or OWNED_TAG_PREFIX).lower()):
                        continue
                    if normal == wanted:
                        return True
                return False
            # -- browsing: the rollups of the customer's joined browsers, a day counting by its first event
            case _ if key in METRICS and METRICS[key].family == "browsing":
                return self._browsing(key, params, self.visit_days.get(pk, []), intervals)
            # -- timing
            case "season_order_share":
                months = set(params["months"])
                hits = sum(1 for o in orders if o.created_at.astimezone(self.zone).month in months)
                return hits / n if n else None
            case "holiday_order_share":
                holiday = params["holiday"]
                hits = 0
                for o in orders:
                    day = self._local_date(o.created_at)
                    first, last = holiday_windows(day.year)[holiday]
                    hits += first <= day <= last
                return hits / n if n else None
            case "customer_age_days":
                return self._days_since(customer.created_at) if customer.created_at is not None else None
            case "replenishment_ratio":
                median = median_gap_days(orders)
                if median is None or median == 0:
                    return None
                elapsed = (self.now - orders[-1].created_at).total_seconds() / 86400
                return elapsed / median
            # -- benefits sought and channel
            case "expedited_share":
                return sum(1 for o in orders if o.shipping_speed == EXPEDITED) / n if n else None
            case "discount_dependence":
                spent = net_of(orders)
                discounted = net_of(o for o in orders if is_discounted(o))
                return float(discounted / spent) if spent > 0 else None
            case "premium_share":
                if not n:
                    return None
                premium = self.premium_price
                hits = sum(1 for o in orders
                           if premium is not None and any(line.price > premium for line in self.lines.get(o.pk, [])))
                return hits / n
            case "mobile_share" | "desktop_share" | "pos_share":
                device = key.removesuffix("_share")
                known = [o for o in orders if o.device != UNKNOWN_DEVICE]
                return sum(1 for o in known if o.device == device) / len(known) if known else None
            case "source_channel":
                sources = Counter(o.source_name for o in orders if o.source_name)
                # The most frequent; a tie goes to the alphabetically first (code point order).
                return min(sources, key=lambda s: (-sources[s], s)) if sources else None
        raise KeyError(f"the reference does not know metric {key!r}")

    # -- helpers ------------------------------------------------------------------------------
    def _browsing(self, key: str, params: dict, all_days: list[VisitorDay], intervals) -> object:
        days = [day for day in all_days if inside_intervals(day.first_at, intervals)]
        match key:
            case _ if key in VISIT_COLUMNS:
                return sum(getattr(day, VISIT_COLUMNS[key]) for day in days)
            case "checkouts_without_order":
                return max(sum(d.checkouts_started for d in days) - sum(d.checkouts_completed for d in days), 0)
            case "browse_to_buy":
                visits = sum(d.sessions for d in days)
                return sum(d.buying_sessions for d in days) / visits if visits else None
            case "custom_events":
                return sum(d.custom.get(params["event"], 0) for d in days)
            case "first_visit_date":
                return self._local_date(min(d.first_at for d in days)) if days else None
            case "days_since_first_visit":
                return self._days_since(min(d.first_at for d in days)) if days else None
            case "days_since_last_visit":
                return self._days_since(max(d.last_at for d in days)) if days else None
            case "first_landing_page":
                return _day_value(days, "landing_path", last=False)
            case "last_landing_page":
                return _day_value(days, "last_landing_path", last=True)
            case _ if key in VISIT_ARRIVALS:
                return _day_value(days, VISIT_ARRIVALS[key], last=True)
        raise AssertionError(f"no reference for browsing metric {key}")

    def _local_date(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def _days_since(self, moment: dt.datetime) -> int:
        return (self.today - self._local_date(moment)).days

    def _score(self, orders: list[Order], column: str, value: object) -> int | None:
        """1 + floor(5 * (customers with a strictly lower value) / buyers); None without orders."""
        if not orders:
            return None
        below = sum(1 for b in self.buyers if getattr(b, column) < value)
        return 1 + 5 * below // len(self.buyers)

    def _orders_with(self, orders: list[Order], attribute: str, wanted: object) -> int:
        return sum(1 for o in orders if any(getattr(line, attribute) == wanted for line in self.lines.get(o.pk, [])))

