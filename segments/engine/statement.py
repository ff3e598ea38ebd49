"""The statement a compiler's conditions become: one pass per kind of feature (orders, orders with
a matching line item, product types, checkouts, carts, storefront visitor-days, top sources), each
grouped by customer and joined to the metrics table, for the whole shop or some of its customers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from segments.engine import metrics_table
from segments.engine.registry import TABLE_COLUMNS

# An anonymous visitor is a customer without history or account. The metrics-table columns such a
# customer has a value in (the rest are NULL: no orders, no dates, no ranks) ...
NO_HISTORY = {"orders_count": "0", "total_spent": "0", "discounted_orders": "0", "full_price_orders": "0",
              "distinct_product_types": "0", "abandoned_checkouts": "0", "abandoned_not_purchased_since": "FALSE"}
# ... and the customer columns rules read: no tags, consent unknown, no account creation date.
CUSTOMER_COLUMNS = ("email_marketing", "sms_marketing", "tags", "created_at")
NO_ACCOUNT = {"email_marketing": "'unknown'", "sms_marketing": "'unknown'", "tags": "'[]'::jsonb"}

if TYPE_CHECKING:       # for the annotation only: the compiler calls this module
    from segments.engine.compiler import Compiler

_SHOP_ORDERS = ("(SELECT * FROM segments_order WHERE shop_id = %(shop)s AND cancelled_at IS NULL "
                "AND customer_id IS NOT NULL) o")


def _select(features: dict[str, str]) -> str:
    return ", ".join(f"{expression} AS {alias}" for alias, expression in features.items())


def statement(compiler: Compiler, columns: dict[str, str],
              customer_ids: Sequence[int] | None = None, *, visitors: bool = False) -> tuple[str, dict]:
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

    With `visitors`, the same expressions for the shop's anonymous visitors instead (`customer_ids`:
    visitor ids): see visitor_statement.
    """
    some = customer_ids is not None or visitors
    params = dict(compiler.params)
    if customer_ids is not None:
        params["ids"] = metrics_table._ids_param(customer_ids)
    if visitors:   # no customer's rows: every pass over orders, checkouts and carts is empty (PostgreSQL plans none)
        ids = (lambda column: "AND FALSE")
    else:
        ids = (lambda column: f"AND {metrics_table._in_ids(column)}") if some else (lambda column: "")
    ctes, joins = [], []
    orders = (f"FROM segments_order o WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL "
              f"AND o.customer_id IS NOT NULL {ids('o.customer_id')}")
    if compiler.order_line_flags:
        # The orders with a line item meeting any of the conditions, one row each with a flag per
        # condition (an order without one has no row: every flag false), for the order features.
        flags = ", ".join(f"bool_or({condition}) AS {alias}" for alias, condition in compiler.order_line_flags.items())
        matching = " OR ".join(f"({condition})" for condition in compiler.order_line_flags.values())
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
        ctes.append(f"fo AS (SELECT o.customer_id, {_select(compiler.order_features)} {orders_lines} "
                    f"GROUP BY o.customer_id)")
        joins.append("FULL JOIN fo ON fo.customer_id = m.customer_id")
    elif compiler.order_features:
        ctes.append(f"fo AS (SELECT o.customer_id, {_select(compiler.order_features)} {orders} GROUP BY o.customer_id)")
        joins.append("FULL JOIN fo ON fo.customer_id = m.customer_id")
    if compiler.type_features:
        if not some:
            # Full join, as above: a line item outside `o` flags nothing and groups with NULL.
            lines = (f"FROM {_SHOP_ORDERS} FULL JOIN (SELECT * FROM segments_lineitem "
                     "WHERE shop_id = %(shop)s AND product_type <> '') li ON li.order_id = o.id")
        else:
            lines = orders.replace("FROM segments_order o", "FROM segments_order o JOIN segments_lineitem li "
                                                           "ON li.order_id = o.id AND li.shop_id = o.shop_id", 1)
            lines += " AND li.product_type <> ''"
        counts = ", ".join(f"count(DISTINCT CASE WHEN {flag} THEN li.product_type END) AS {alias}"
                           for alias, flag in compiler.type_features.items())
        ctes.append(f"ft AS (SELECT o.customer_id, {counts} {lines} GROUP BY o.customer_id)")
        joins.append("FULL JOIN ft ON ft.customer_id = m.customer_id")
    if compiler.checkout_features:
        params["abandoned_before"] = compiler.ctx.abandoned_before
        ctes.append(f"fk AS (SELECT k.customer_id, {_select(compiler.checkout_features)} FROM segments_checkout k "
                    f"WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL AND k.completed_at IS NULL "
                    f"AND k.deleted_at IS NULL AND k.created_at <= %(abandoned_before)s {ids('k.customer_id')} "
                    f"GROUP BY k.customer_id)")
        joins.append("FULL JOIN fk ON fk.customer_id = m.customer_id")
    if compiler.cart_features:
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
        ctes.append(f"fc AS (SELECT k.customer_id, {_select(compiler.cart_features)} {carts} GROUP BY k.customer_id)")
        joins.append("FULL JOIN fc ON fc.customer_id = m.customer_id")
    if compiler.visit_features and visitors:
        # Each anonymous visitor's own rollups.
        only = f"AND {metrics_table._in_ids('v.id')}" if customer_ids is not None else ""
        ctes.append(f"fv AS (SELECT vd.visitor_id, {_select(compiler.visit_features)} FROM segments_visitorday vd "
                    f"JOIN segments_visitor v ON v.id = vd.visitor_id WHERE vd.shop_id = %(shop)s "
                    f"AND v.customer_id IS NULL {only} GROUP BY vd.visitor_id)")
        joins.append("LEFT JOIN fv ON fv.visitor_id = vis.id")
    elif compiler.visit_features:
        # The rollups of the browsers joined to a customer (segments.storefront), summed per customer.
        ctes.append(f"fv AS (SELECT v.customer_id, {_select(compiler.visit_features)} FROM segments_visitorday vd "
                    f"JOIN segments_visitor v ON v.id = vd.visitor_id WHERE vd.shop_id = %(shop)s "
                    f"AND v.customer_id IS NOT NULL {ids('v.customer_id')} GROUP BY v.customer_id)")
        joins.append("FULL JOIN fv ON fv.customer_id = m.customer_id")
    if compiler.predictions:
        ctes.append(f"pr AS (SELECT * FROM segments_customerprediction WHERE shop_id = %(shop)s {ids('customer_id')})")
        joins.append("FULL JOIN pr ON pr.customer_id = m.customer_id")
    if compiler.top_sources:
        # One row per customer: each window's most frequent source, ties to the first by code point.
        picks = []
        for alias, flag in compiler.top_sources.items():
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
    if visitors:
        return _visitor_select(ctes, joins, selected, customer_ids), params
    customers = (f"(SELECT * FROM segments_customermetrics WHERE shop_id = %(shop)s {ids('customer_id')}) m "
                 f"FULL JOIN (SELECT * FROM segments_customer WHERE shop_id = %(shop)s "
                 f"AND deleted_at IS NULL {ids('id')}) c ON c.id = m.customer_id")
    # `present`: the customer is on the metrics and the customers side of the full joins.
    ctes.append(f"joined AS MATERIALIZED (SELECT m.customer_id, c.id IS NOT NULL AS present{selected} "
                f"FROM {customers} {' '.join(joins)})")
    names = "".join(f", {name}" for name in columns)
    sql = f"WITH {', '.join(ctes)} SELECT customer_id{names} FROM joined WHERE customer_id IS NOT NULL AND present"
    return sql, params


def _visitor_select(ctes: list[str], joins: list[str], selected: str, visitor_ids: Sequence[int] | None) -> str:
    """The shop's anonymous visitors as customers without history: `m` is the metrics row of a customer
    with no orders or checkouts, `c` a customer with no tags and unknown consent (typed by outer joins
    on nothing), and every customer pass joins nothing."""
    m = ", ".join(f"COALESCE(z.{column}, {NO_HISTORY[column]}) AS {column}" if column in NO_HISTORY
                  else f"z.{column}" for column in TABLE_COLUMNS)
    c = ", ".join(f"COALESCE(y.{column}, {NO_ACCOUNT[column]}) AS {column}" if column in NO_ACCOUNT
                  else f"y.{column}" for column in CUSTOMER_COLUMNS)
    joined = [join if join.startswith("LEFT JOIN fv") else join.split(" ON ")[0].replace("FULL JOIN", "LEFT JOIN")
              + " ON FALSE" for join in joins]
    only = f"AND {metrics_table._in_ids('vis.id')}" if visitor_ids is not None else ""
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    return (f"{with_}SELECT vis.id AS visitor_id{selected} FROM segments_visitor vis "
            f"CROSS JOIN (SELECT {m} FROM (SELECT 1) one LEFT JOIN segments_customermetrics z ON FALSE) m "
            f"CROSS JOIN (SELECT {c} FROM (SELECT 1) one LEFT JOIN segments_customer y ON FALSE) c "
            f"{' '.join(joined)} WHERE vis.shop_id = %(shop)s AND vis.customer_id IS NULL {only}")
