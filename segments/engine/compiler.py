"""Rule sets compiled to SQL: one statement decides every customer of a shop (or some of them) for
any number of segments at once, set-at-a-time.

The semantics are docs/rules.md "Evaluation"; the pure-Python reference (segments.engine.reference)
implements the same section and a property test holds the two together.

Shape of the statement. Conditions read the per-customer metrics table `m` and the customer row `c`
directly. Everything computed over a window, and the "query" metrics, are *features*: aggregates
the compiler collects while compiling and computes in at most five grouped passes, one per source
(orders, line items, checkouts, carts, and the top source per window), LEFT JOINed by customer.
Ten segments that each count orders in the last 90 days share one feature, and every feature of a
source is one pass over its rows, whatever the number of rules.

Time. `now` and the shop's timezone are inputs (Context). Conditions on elapsed days or on dates
compile to comparisons of the stored timestamp with instants computed here in Python (local
midnights, DST included), so the SQL never needs timezone support and indexes stay usable; windows
resolve to UTC intervals (segments.engine.windows). Every condition is two-valued: a missing value
makes it false (COALESCE(…, FALSE)), so `not` and `exclude` never meet SQL's NULL.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from segments.engine import metrics_table
from segments.engine.registry import Metric
from segments.engine.rules import All, Any_, Condition, Node, Not, RuleSet
from segments.engine.windows import Interval, Window, holiday_windows, resolve_window

OWNED_TAG_PREFIX = "seg:"   # the default prefix of the app's own tags; has_tag never matches the shop's
TAG_SPACE = " \t\n\r\f\v"   # trimmed around tags before comparing

_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}
_FLOAT_TYPES = ("ratio", "number")


@dataclass(frozen=True)
class Context:
    """What evaluation needs besides the rules: the shop, the moment and the shop's calendar."""

    shop_id: int
    now: dt.datetime
    tz: str
    abandoned_before: dt.datetime
    premium_price: Decimal | None
    history: tuple[dt.datetime, dt.datetime] | None   # first and last order times of the shop's mirror
    tag_prefix: str = OWNED_TAG_PREFIX                 # the shop's own tags, which rules never read

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The UTC instant the shop's calendar day `day` begins."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)

    def days_ago(self, days: int) -> dt.datetime:
        """Midnight (shop time) `days` days before today; negative days are in the future."""
        return self.midnight(_shift(self.today, -days))


def _shift(day: dt.date, days: int) -> dt.date:
    # Clamped: a rule's 36,500 days must not step outside the calendar Python can name.
    ordinal = min(max(day.toordinal() + days, dt.date.min.toordinal() + 1), dt.date.max.toordinal() - 1)
    return dt.date.fromordinal(ordinal)


def context_for(shop, now: dt.datetime) -> Context:
    """The evaluation context of a shop at `now` (reads the shop's premium price and order span)."""
    breakpoints = metrics_table.shop_breakpoints(shop_id=shop.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(created_at), max(created_at) FROM segments_order WHERE shop_id = %s", [shop.pk])
        first, last = cursor.fetchone()
    history = (_aware(first), _aware(last)) if first is not None else None
    return Context(shop_id=shop.pk, now=now, tz=shop.iana_timezone or "UTC",
                   abandoned_before=now - dt.timedelta(minutes=shop.checkout_abandon_minutes),
                   premium_price=breakpoints.premium_price if breakpoints else None, history=history,
                   tag_prefix=(shop.tag_prefix or OWNED_TAG_PREFIX).lower())


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Compiler:
    """Compiles conditions into SQL predicates over `m` (metrics), `c` (customer) and the feature
    passes; `statement` assembles the passes and the predicates into one SELECT."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.params: dict[str, object] = {"shop": ctx.shop_id}
        self._values: dict[object, str] = {}
        self.order_features: dict[str, str] = {}      # alias → aggregate over orders `o`
        self.order_line_flags: dict[str, str] = {}    # alias → a condition on line items `li`, per order in `ol`
        self.type_features: dict[str, str] = {}       # alias → the order flag under which a product type counts
        self.checkout_features: dict[str, str] = {}   # over abandoned checkouts `k`
        self.cart_features: dict[str, str] = {}       # over carts `ca` linked by the customer's checkouts
        self.top_sources: dict[str, str] = {}         # alias → window flag over orders `o`

    # -- parameters and features ---------------------------------------------------------------
    def param(self, value: object) -> str:
        """A named placeholder for `value` (equal values share one)."""
        key = (type(value), value)
        if key not in self._values:
            name = f"p{len(self._values)}"
            self._values[key] = name
            self.params[name] = _adapt(value)
        return f"%({self._values[key]})s"

    def _feature(self, table: dict[str, str], prefix: str, expression: str) -> str:
        for alias, existing in table.items():
            if existing == expression:
                return alias
        alias = f"{prefix}{len(table)}"
        table[alias] = expression
        return alias

    def order_feature(self, expression: str) -> str:
        return "fo." + self._feature(self.order_features, "o", expression)

    def orders_with_line(self, flag: str, line_condition: str) -> str:
        """Orders under `flag` with a line item meeting `line_condition`: each order's line items are
        reduced to one row first (`ol`), then counted with the other order features (no DISTINCT
        over the line items, no second pass over the orders)."""
        has_line = "ol." + self._feature(self.order_line_flags, "a", line_condition)
        return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} AND {has_line} THEN 1 ELSE 0 END)')}, 0)"

    def product_types(self, flag: str) -> str:
        """Distinct product types on orders under `flag`."""
        return f"COALESCE(ft.{self._feature(self.type_features, 't', flag)}, 0)"

    def checkout_feature(self, expression: str) -> str:
        return "fk." + self._feature(self.checkout_features, "k", expression)

    def cart_feature(self, expression: str) -> str:
        return "fc." + self._feature(self.cart_features, "c", expression)

    def intervals_flag(self, column: str, intervals: Sequence[Interval]) -> str:
        """SQL: `column` lies in one of the half-open intervals."""
        if not intervals:
            return "FALSE"
        return "(" + " OR ".join(f"({column} >= {self.param(start)} AND {column} < {self.param(end)})"
                                 for start, end in intervals) + ")"

    def window_flag(self, column: str, window: Window | None) -> str:
        if window is None:
            return "TRUE"
        return self.intervals_flag(column, resolve_window(window, now=self.ctx.now, tz=self.ctx.tz))

    # -- rules ---------------------------------------------------------------------------------
    def ruleset(self, ruleset: RuleSet) -> str:
        """A never-NULL boolean SQL expression: the customer is in the segment."""
        include = self.node(ruleset.include)
        if ruleset.exclude is None:
            return include
        return f"({include} AND NOT {self.node(ruleset.exclude)})"

    def node(self, node: Node) -> str:
        match node:
            case All(children=children):
                return "(" + " AND ".join(self.node(child) for child in children) + ")"
            case Any_(children=children):
                return "(" + " OR ".join(self.node(child) for child in children) + ")"
            case Not(child=child):
                return f"(NOT {self.node(child)})"
        return f"COALESCE({self.condition(node)}, FALSE)"

    def condition(self, condition: Condition) -> str:
        """SQL for one condition; NULL where the metric has no value (the caller makes that false)."""
        metric = condition.metric
        if metric.derive == "days_since" or metric.value_type == "date":
            return self._timestamp_condition(condition, f"m.{metric.column}")
        value = self.value(condition)
        return self.compare(value, condition)

    def compare(self, value: str, condition: Condition) -> str:
        """SQL comparing a value expression with the condition's operator and value."""
        op, target, value_type = condition.op, condition.value, condition.metric.value_type

        def literal(item):
            return self.param(float(item) if value_type in _FLOAT_TYPES else item)

        if op == "is":
            return f"({value} = {'TRUE' if target else 'FALSE'})"
        if op == "between":
            low, high = target
            return f"({value} >= {literal(low)} AND {value} <= {literal(high)})"
        if op in ("in", "not_in"):
            items = ", ".join(literal(item) for item in target)
            # NOT IN over a NULL value is NULL, so a missing value stays false for both.
            return f"({value} {'IN' if op == 'in' else 'NOT IN'} ({items}))"
        return f"({value} {_COMPARE[op]} {literal(target)})"

    def _timestamp_condition(self, condition: Condition, column: str) -> str:
        """Days since a timestamp, or its calendar date, as comparisons of the timestamp itself."""
        ctx, op, value = self.ctx, condition.op, condition.value
        if condition.metric.value_type == "date":
            # The local date of `column` against calendar dates.
            match op:
                case "before":
                    return f"({column} < {self.param(ctx.midnight(value))})"
                case "after":
                    return f"({column} >= {self.param(ctx.midnight(_shift(value, 1)))})"
                case "between":
                    low, high = value
                    return self._instant_range(column, ctx.midnight(low), ctx.midnight(_shift(high, 1)))
                case "within_last_days":
                    return f"({column} >= {self.param(ctx.days_ago(value))})"
            raise AssertionError(f"date operator {op}")
        # Whole days since: D = today - local date. D >= n  <=>  the date is on or before today - n
        # <=>  column < midnight(today - n + 1).
        def at_least(n: int) -> str:
            return f"({column} < {self.param(ctx.days_ago(n - 1))})"

        def at_most(n: int) -> str:
            return f"({column} >= {self.param(ctx.days_ago(n))})"

        match op:
            case "gt":
                return at_least(value + 1)
            case "gte":
                return at_least(value)
            case "lt":
                return at_most(value - 1)
            case "lte":
                return at_most(value)
            case "eq":
                return f"({at_least(value)} AND {at_most(value)})"
            case "neq":
                return f"({column} IS NOT NULL AND NOT ({at_least(value)} AND {at_most(value)}))"
            case "between":
                low, high = value
                return f"({at_least(low)} AND {at_most(high)})"
        raise AssertionError(f"days operator {op}")

    def _instant_range(self, column: str, start: dt.datetime, end: dt.datetime) -> str:
        return f"({column} >= {self.param(start)} AND {column} < {self.param(end)})"

    # -- metric values ---------------------------------------------------------------------------
    def value(self, condition: Condition) -> str:
        """SQL for the metric's value for the customer (NULL when it has none)."""
        metric, window = condition.metric, condition.window
        key = metric.key
        if key in ("email_marketing", "sms_marketing"):
            return f"c.{key}"
        if key == "has_tag":
            return self._has_tag(str(condition.params["tag"]))
        if window is None and metric.source == "table":
            return self._table_value(metric)
        flag = self.window_flag("o.created_at", window)
        match key:
            case "orders_count":
                return self._count(flag)
            case "total_spent":
                return f"COALESCE({self._spent(flag)}, 0)"
            case "aov":
                return f"CASE WHEN {self._count(flag)} > 0 THEN ROUND({self._spent(flag)} * 1.0 / {self._count(flag)}, 2) END"
            case "largest_order":
                return self.order_feature(f"max(CASE WHEN {flag} THEN o.total END)")
            case "discounted_order_share":
                return self._share(self._count(f"{flag} AND {_DISCOUNTED}"), self._count(flag))
            case "full_price_orders":
                return self._count(f"{flag} AND NOT {_DISCOUNTED}")
            case "refund_rate":
                refunded = self.order_feature(f"sum(CASE WHEN {flag} THEN o.total_refunded ELSE 0 END)")
                gross = self.order_feature(f"sum(CASE WHEN {flag} THEN o.total ELSE 0 END)")
                return self._share(refunded, gross)
            case "expedited_share":
                return self._share(self._count(f"{flag} AND o.shipping_speed = 'expedited'"), self._count(flag))
            case "discount_dependence":
                discounted = self.order_feature(
                    f"sum(CASE WHEN {flag} AND {_DISCOUNTED} THEN o.total - o.total_refunded ELSE 0 END)")
                return self._share(discounted, self._spent(flag))
            case "mobile_share" | "desktop_share" | "pos_share":
                device = key.removesuffix("_share")
                return self._share(self._count(f"{flag} AND o.device = '{device}'"),
                                   self._count(f"{flag} AND o.device <> 'unknown'"))
            case "premium_share":
                if self.ctx.premium_price is None:
                    premium = self.param(0)
                    return self._share(premium, self._count(flag))
                orders = self.orders_with_line(flag, f"li.price > {self.param(self.ctx.premium_price)}")
                return self._share(orders, self._count(flag))
            case "distinct_product_types":
                return self.product_types(flag)
            case "product_type_orders" | "product_type_share" | "vendor_orders" | "vendor_share" | "product_orders":
                column, param = {"product_type": ("li.product_type", "product_type"),
                                 "vendor": ("li.vendor", "vendor"),
                                 "product": ("li.product_id", "product_id")}[key.rsplit("_", 1)[0]]
                count = self.orders_with_line(flag, f"{column} = {self.param(condition.params[param])}")
                return self._share(count, self._count(flag)) if key.endswith("_share") else count
            case "season_order_share" | "holiday_order_share":
                spans = self._calendar_intervals(condition)
                if window is not None:
                    spans = _intersect(spans, resolve_window(window, now=self.ctx.now, tz=self.ctx.tz))
                in_season = self.intervals_flag("o.created_at", spans)
                return self._share(self._count(f"{flag} AND {in_season}"), self._count(flag))
            case "source_channel":
                return "fs." + self._feature(self.top_sources, "s", flag)
            case "abandoned_checkouts":
                count = self.checkout_feature(
                    f"sum(CASE WHEN {self.window_flag('k.created_at', window)} THEN 1 ELSE 0 END)")
                return f"COALESCE({count}, 0)"
            case "abandoned_not_purchased_since":
                newest = self.checkout_feature(
                    f"max(CASE WHEN {self.window_flag('k.created_at', window)} THEN k.created_at END)")
                return (f"({newest} IS NOT NULL AND (m.last_order_at IS NULL OR m.last_order_at <= {newest}))")
            case "cart_activity":
                carts = self.cart_feature(f"count(DISTINCT CASE WHEN "
                                          f"{self.window_flag('COALESCE(ca.updated_at, ca.created_at)', window)} "
                                          f"THEN ca.id END)")
                return f"COALESCE({carts}, 0)"
        raise AssertionError(f"no SQL for metric {key} with window {window!r}")

    def _table_value(self, metric: Metric) -> str:
        column = f"m.{metric.column}"
        match metric.derive:
            case None:
                return column
            case "per_order":
                return self._share(column, "m.orders_count")
            case "replenishment":
                elapsed = _days_between(self.param(self.ctx.now), "m.last_order_at")
                return (f"CASE WHEN {column} > 0 THEN ({elapsed}) / {column} END")
        raise AssertionError(f"derivation {metric.derive} of {metric.key} is compiled elsewhere")

    def _count(self, flag: str) -> str:
        return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} THEN 1 ELSE 0 END)')}, 0)"

    def _spent(self, flag: str) -> str:
        return self.order_feature(f"sum(CASE WHEN {flag} THEN o.total - o.total_refunded ELSE 0 END)")

    def _share(self, numerator: str, denominator: str) -> str:
        # The double nearest the exact ratio: numerics divide exactly enough, then one rounding.
        return f"CASE WHEN {denominator} > 0 THEN CAST({numerator} * 1.0 / {denominator} AS double precision) END"

    def _has_tag(self, tag: str) -> str:
        # Both sides are folded by the same SQL (lower() of the trimmed text), so a tag always
        # matches itself, whatever its script; Python's lower() differs from the database's on a
        # few letters (a final sigma, a dotted capital I).
        prefix = self.ctx.tag_prefix
        if tag.strip(TAG_SPACE).lower().startswith(prefix):
            return "FALSE"
        space = self.param(TAG_SPACE)
        folded = f"lower(btrim(t.value, {space}))"
        return (f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(c.tags) AS t(value) "
                f"WHERE {folded} = lower(btrim({self.param(tag)}, {space})) "
                f"AND substr({folded}, 1, {len(prefix)}) <> {self.param(prefix)})")

    def _calendar_intervals(self, condition: Condition) -> list[Interval]:
        """The season's months or the holiday's dates in every year the shop has orders."""
        if self.ctx.history is None:
            return []
        zone = self.ctx.zone
        first, last = (t.astimezone(zone).date() for t in self.ctx.history)
        if condition.metric.key == "holiday_order_share":
            name = condition.params["holiday"]
            days = [holiday_windows(year)[name] for year in range(first.year, last.year + 1)]
            return [(self.ctx.midnight(start), self.ctx.midnight(_shift(end, 1))) for start, end in days]
        months = set(condition.params["months"])
        spans: list[Interval] = []
        for index in range(first.year * 12 + first.month - 1, last.year * 12 + last.month):
            year, month0 = divmod(index, 12)
            if month0 + 1 not in months:
                continue
            start = self.ctx.midnight(dt.date(year, month0 + 1, 1))
            next_year, next_month0 = divmod(index + 1, 12)
            end = self.ctx.midnight(dt.date(next_year, next_month0 + 1, 1))
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    # -- the statement ---------------------------------------------------------------------------
    def statement(self, columns: dict[str, str], customer_ids: Sequence[int] | None = None) -> tuple[str, dict]:
        """SELECT customer_id and the named expressions for the shop's evaluated customers (or
        those of `customer_ids`), with the feature passes the expressions need.

        On PostgreSQL the per-customer relations (metrics, customers, each feature pass) are joined
        by FULL JOINs inside a MATERIALIZED CTE, and the rows a full join adds (a customer on one
        side only) are dropped outside it. PostgreSQL runs a full join only as a hash or merge join,
        so its plan is linear in the shop's rows whatever the statistics say: with LEFT JOINs, on
        tables a bulk load left unanalyzed (every estimate one row), it chose nested loops that
        re-aggregated a feature pass once per customer (15 s for 5,000 customers, hours for 100,000).
        The MATERIALIZED fence keeps the planner from turning the full joins back into left joins
        because of the filter above them.
        """
        some = customer_ids is not None
        params = dict(self.params)
        if some:
            params["ids"] = metrics_table._ids_param(customer_ids)
        ids = (lambda column: f"AND {metrics_table._in_ids(column)}") if some else (lambda column: "")
        ctes, joins = [], []
        orders = (f"FROM segments_order o WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL "
                  f"AND o.customer_id IS NOT NULL {ids('o.customer_id')}")
        if self.order_line_flags:
            # The orders with a line item meeting any of the conditions, one row each with a flag per
            # condition (an order without one has no row: every flag false), for the order features.
            flags = ", ".join(f"bool_or({condition}) AS {alias}" for alias, condition in self.order_line_flags.items())
            matching = " OR ".join(f"({condition})" for condition in self.order_line_flags.values())
            restrict = f"AND li.order_id IN (SELECT o.id {orders})" if some else ""
            ctes.append(f"ol AS (SELECT li.order_id, {flags} FROM segments_lineitem li WHERE li.shop_id = %(shop)s "
                        f"AND ({matching}) {restrict} GROUP BY li.order_id)")
            if not some:
                # A full join, for the reason given above; line items of orders outside `o`
                # (cancelled, guest) land in the group of a NULL customer, which matches nobody.
                orders_lines = f"FROM {_SHOP_ORDERS} FULL JOIN ol ON ol.order_id = o.id"
            else:
                orders_lines = orders.replace("FROM segments_order o", "FROM segments_order o LEFT JOIN ol "
                                                                       "ON ol.order_id = o.id", 1)
            ctes.append(f"fo AS (SELECT o.customer_id, {_select(self.order_features)} {orders_lines} "
                        f"GROUP BY o.customer_id)")
            joins.append("FULL JOIN fo ON fo.customer_id = m.customer_id")
        elif self.order_features:
            ctes.append(f"fo AS (SELECT o.customer_id, {_select(self.order_features)} {orders} GROUP BY o.customer_id)")
            joins.append("FULL JOIN fo ON fo.customer_id = m.customer_id")
        if self.type_features:
            if not some:
                # Full join, as above: a line item outside `o` flags nothing and groups with NULL.
                lines = (f"FROM {_SHOP_ORDERS} FULL JOIN (SELECT * FROM segments_lineitem "
                         "WHERE shop_id = %(shop)s AND product_type <> '') li ON li.order_id = o.id")
            else:
                lines = orders.replace("FROM segments_order o", "FROM segments_order o JOIN segments_lineitem li "
                                                               "ON li.order_id = o.id AND li.shop_id = o.shop_id", 1)
                lines += " AND li.product_type <> ''"
            counts = ", ".join(f"count(DISTINCT CASE WHEN {flag} THEN li.product_type END) AS {alias}"
                               for alias, flag in self.type_features.items())
            ctes.append(f"ft AS (SELECT o.customer_id, {counts} {lines} GROUP BY o.customer_id)")
            joins.append("FULL JOIN ft ON ft.customer_id = m.customer_id")
        if self.checkout_features:
            params["abandoned_before"] = self.ctx.abandoned_before
            ctes.append(f"fk AS (SELECT k.customer_id, {_select(self.checkout_features)} FROM segments_checkout k "
                        f"WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL AND k.completed_at IS NULL "
                        f"AND k.deleted_at IS NULL AND k.created_at <= %(abandoned_before)s {ids('k.customer_id')} "
                        f"GROUP BY k.customer_id)")
            joins.append("FULL JOIN fk ON fk.customer_id = m.customer_id")
        if self.cart_features:
            # A cart linked by several checkouts of the customer counts once (DISTINCT ca.id).
            if not some:
                # Full join, as for line items: a cart no checkout links lands in the NULL customer's group.
                carts = ("FROM (SELECT * FROM segments_checkout WHERE shop_id = %(shop)s AND customer_id IS NOT NULL "
                         "AND cart_token <> '') k FULL JOIN (SELECT * FROM segments_cart WHERE shop_id = %(shop)s) ca "
                         "ON ca.token = k.cart_token")
            else:
                carts = (f"FROM segments_checkout k JOIN segments_cart ca ON ca.shop_id = k.shop_id "
                         f"AND ca.token = k.cart_token WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL "
                         f"AND k.cart_token <> '' {ids('k.customer_id')}")
            ctes.append(f"fc AS (SELECT k.customer_id, {_select(self.cart_features)} {carts} GROUP BY k.customer_id)")
            joins.append("FULL JOIN fc ON fc.customer_id = m.customer_id")
        if self.top_sources:
            # One row per customer: each window's most frequent source, ties to the first by code point.
            picks = []
            for alias, flag in self.top_sources.items():
                ctes.append(f"ts_{alias} AS (SELECT o.customer_id, o.source_name, row_number() OVER "
                            f'(PARTITION BY o.customer_id ORDER BY count(*) DESC, o.source_name COLLATE "C") AS rn '
                            f"{orders} AND o.source_name <> '' AND {flag} GROUP BY o.customer_id, o.source_name)")
                picks.append((alias, f"ts_{alias}"))
            selected = ", ".join(f"max(CASE WHEN src = '{alias}' THEN source_name END) AS {alias}" for alias, _ in picks)
            union = " UNION ALL ".join(f"SELECT customer_id, source_name, '{alias}' AS src FROM {table} WHERE rn = 1"
                                       for alias, table in picks)
            ctes.append(f"fs AS (SELECT customer_id, {selected} FROM ({union}) picked GROUP BY customer_id)")
            joins.append("FULL JOIN fs ON fs.customer_id = m.customer_id")
        selected = "".join(f", {expression} AS {name}" for name, expression in columns.items())
        customers = (f"(SELECT * FROM segments_customermetrics WHERE shop_id = %(shop)s {ids('customer_id')}) m "
                     f"FULL JOIN (SELECT * FROM segments_customer WHERE shop_id = %(shop)s "
                     f"AND deleted_at IS NULL {ids('id')}) c ON c.id = m.customer_id")
        # `present`: the customer is on the metrics and the customers side of the full joins.
        ctes.append(f"joined AS MATERIALIZED (SELECT m.customer_id, c.id IS NOT NULL AS present{selected} "
                    f"FROM {customers} {' '.join(joins)})")
        names = "".join(f", {name}" for name in columns)
        sql = f"WITH {', '.join(ctes)} SELECT customer_id{names} FROM joined WHERE customer_id IS NOT NULL AND present"
        return sql, params


_DISCOUNTED = "(o.total_discounts > 0 OR o.discount_codes <> '[]')"
# The orders the order features count, as the left side of a full join.
_SHOP_ORDERS = ("(SELECT * FROM segments_order WHERE shop_id = %(shop)s AND cancelled_at IS NULL "
                "AND customer_id IS NOT NULL) o")


def _adapt(value: object) -> object:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _select(features: dict[str, str]) -> str:
    return ", ".join(f"{expression} AS {alias}" for alias, expression in features.items())


def _days_between(later: str, earlier: str) -> str:
    return f"CAST(EXTRACT(EPOCH FROM CAST({later} AS timestamptz) - {earlier}) AS double precision) / 86400"


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The intersection of two sorted lists of disjoint half-open intervals."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def evaluate(ruleset: RuleSet, *, shop, now: dt.datetime, customer_ids: Sequence[int] | None = None) -> set[int]:
    """The primary keys of the shop's customers (of `customer_ids`, if given) in the segment at `now`."""
    compiler = Compiler(context_for(shop, now))
    predicate = compiler.ruleset(ruleset)
    sql, params = compiler.statement({"hit": predicate}, customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id FROM ({sql}) evaluated WHERE hit", params)
        return {row[0] for row in cursor.fetchall()}
