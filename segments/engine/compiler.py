"""Rule sets compiled to SQL: one statement decides every customer of a shop (or some of them) for
any number of segments at once, set-at-a-time.

The semantics are docs/rules.md "Evaluation"; the pure-Python reference (tests.segments.engine.reference)
implements the same section and a property test holds the two together.

Shape of the statement. Conditions read the per-customer metrics table `m`, the customer row `c` and
the predictions `pr` directly. Everything computed over a window, and the "query" metrics, are
*features*: aggregates collected while compiling and computed in grouped passes, one per source
(orders, line items, checkouts, carts, storefront visitor-days, the top source per window), joined
by customer. Ten segments counting orders in the last 90 days share one feature.

Time. `now` and the shop's timezone are inputs (Context). Conditions on elapsed days or dates compile
to comparisons of the stored timestamp with instants computed in Python (local midnights, DST
included), so the SQL needs no timezone support; windows resolve to UTC intervals. Every condition
is two-valued: a missing value makes it false (COALESCE), so `not` and `exclude` never meet NULL.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection

from segments.engine.context import Context, context_for, shift
from segments.engine.browsing import BrowsingValues
from segments.engine.profit import ProfitValues
from segments.engine.registry import Metric
from segments.engine.rules import All, Any_, Condition, Node, Not, RuleSet, conditions
from segments.engine.statement import statement
from segments.engine.windows import Interval, Window, holiday_windows, resolve_window

TAG_SPACE = " \t\n\r\f\v"   # trimmed around tags before comparing

_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}
_FLOAT_TYPES = ("ratio", "number")


class Compiler(BrowsingValues, ProfitValues):
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
        self.visit_features: dict[str, str] = {}      # over the visitor-days `vd` of the customer's browsers
        self.top_sources: dict[str, str] = {}         # alias → window flag over orders `o`
        self.predictions = False                       # whether a condition reads the predictions `pr`

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
        """Orders under `flag` with a line item meeting `line_condition`: each order's line items are reduced
        to one row first (`ol`), then counted with the other order features (no second pass over orders)."""
        has_line = "ol." + self._feature(self.order_line_flags, "a", line_condition)
        return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} AND {has_line} THEN 1 ELSE 0 END)')}, 0)"

    def product_types(self, flag: str) -> str:
        """Distinct product types on orders under `flag`."""
        return f"COALESCE(ft.{self._feature(self.type_features, 't', flag)}, 0)"

    def checkout_feature(self, expression: str) -> str:
        return "fk." + self._feature(self.checkout_features, "k", expression)

    def cart_feature(self, expression: str) -> str:
        return "fc." + self._feature(self.cart_features, "c", expression)

    def visit_feature(self, expression: str) -> str:
        return "fv." + self._feature(self.visit_features, "v", expression)

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
            return self._timestamp_condition(condition, self.timestamp(metric))
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
                    return f"({column} >= {self.param(ctx.midnight(shift(value, 1)))})"
                case "between":
                    low, high = value
                    return self._instant_range(column, ctx.midnight(low), ctx.midnight(shift(high, 1)))
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
        if metric.source == "prediction":
            self.predictions = True
            return self._predicted_profit() if key == "predicted_profit" else f"pr.{metric.column}"
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
            case "gross_profit" | "gross_margin" | "discount_cost":
                return self._profit_value(key, flag)
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
            case _ if metric.family == "browsing":
                return self._browsing_value(condition)
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
            return [(self.ctx.midnight(start), self.ctx.midnight(shift(end, 1))) for start, end in days]
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
        """One statement deciding `columns` (name -> SQL) for the shop's customers (segments.engine.statement)."""
        return statement(self, columns, customer_ids)

    def visitor_statement(self, columns: dict[str, str], visitor_ids: Sequence[int] | None = None) -> tuple[str, dict]:
        """The same for the shop's anonymous visitors (visitor_id and the columns)."""
        return statement(self, columns, visitor_ids, visitors=True)

_DISCOUNTED = "(o.total_discounts > 0 OR o.discount_codes <> '[]')"
# The orders the order features count, as the left side of a full join.

def _adapt(value: object) -> object:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


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


def judges_visitors(ruleset: RuleSet) -> bool:
    """Whether a segment with these rules has anonymous visitors too: its rules read browsing. (Rules
    on purchases alone would take every visitor or none: `not orders >= 2` is true of them all.)"""
    return any(condition.metric.family == "browsing" for condition in conditions(ruleset))


def evaluate_visitors(ruleset: RuleSet, *, shop, now: dt.datetime, visitor_ids: Sequence[int] | None = None) -> set[int]:
    """The shop's anonymous visitors (of `visitor_ids`, if given) in the segment at `now`, each judged as a
    customer with no orders, carts, tags or account browsing only itself (docs/rules.md)."""
    compiler = Compiler(context_for(shop, now))
    sql, params = compiler.visitor_statement({"hit": compiler.ruleset(ruleset)}, visitor_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT visitor_id FROM ({sql}) evaluated WHERE hit", params)
        return {row[0] for row in cursor.fetchall()}


def evaluate(ruleset: RuleSet, *, shop, now: dt.datetime, customer_ids: Sequence[int] | None = None) -> set[int]:
    """The primary keys of the shop's customers (of `customer_ids`, if given) in the segment at `now`."""
    compiler = Compiler(context_for(shop, now))
    sql, params = compiler.statement({"hit": compiler.ruleset(ruleset)}, customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id FROM ({sql}) evaluated WHERE hit", params)
        return {row[0] for row in cursor.fetchall()}
