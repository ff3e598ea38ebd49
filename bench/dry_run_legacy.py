"""The dry run as it was before issue 14 (at 796ca20), for bench/dry_run_bench.py's baseline: the
compiler's feature passes as plain CTEs LEFT JOINed by customer, and the statement run four times.
Its imports are inside the functions: it is loaded only once Django is set up, in the bench's child."""
from __future__ import annotations


def legacy_statement(self, columns: dict[str, str], customer_ids=None) -> tuple[str, dict]:
    """Compiler.statement as it was before issue 14 (whole shop): feature passes as plain CTEs
    LEFT JOINed by customer, which PostgreSQL inlines and may run per customer."""
    from segments.engine.compiler import _select

    assert customer_ids is None
    params = dict(self.params)
    ctes, joins = [], []
    orders = "FROM segments_order o WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL"
    # (line-item features as today's compiler states them, joined the old way)
    orders_lines = orders
    if self.order_line_flags:
        flags = ", ".join(f"bool_or({condition}) AS {alias}" for alias, condition in self.order_line_flags.items())
        ctes.append(f"ol AS (SELECT li.order_id, {flags} FROM segments_lineitem li "
                    f"WHERE li.shop_id = %(shop)s GROUP BY li.order_id)")
        orders_lines = orders.replace("FROM segments_order o", "FROM segments_order o LEFT JOIN ol "
                                                              "ON ol.order_id = o.id", 1)
    if self.order_features:
        ctes.append(f"fo AS (SELECT o.customer_id, {_select(self.order_features)} {orders_lines} "
                    f"GROUP BY o.customer_id)")
        joins.append("LEFT JOIN fo ON fo.customer_id = m.customer_id")
    if self.type_features:
        lines = orders.replace("FROM segments_order o", "FROM segments_order o JOIN segments_lineitem li "
                                                       "ON li.order_id = o.id AND li.shop_id = o.shop_id", 1)
        counts = ", ".join(f"count(DISTINCT CASE WHEN {flag} THEN NULLIF(li.product_type, '') END) AS {alias}"
                           for alias, flag in self.type_features.items())
        ctes.append(f"ft AS (SELECT o.customer_id, {counts} {lines} GROUP BY o.customer_id)")
        joins.append("LEFT JOIN ft ON ft.customer_id = m.customer_id")
    if self.checkout_features:
        params["abandoned_before"] = self.ctx.abandoned_before
        ctes.append(f"fk AS (SELECT k.customer_id, {_select(self.checkout_features)} FROM segments_checkout k "
                    f"WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL AND k.completed_at IS NULL "
                    f"AND k.deleted_at IS NULL AND k.created_at <= %(abandoned_before)s GROUP BY k.customer_id)")
        joins.append("LEFT JOIN fk ON fk.customer_id = m.customer_id")
    if self.cart_features:
        ctes.append(f"fc AS (SELECT k.customer_id, {_select(self.cart_features)} FROM segments_checkout k "
                    f"JOIN segments_cart ca ON ca.shop_id = k.shop_id AND ca.token = k.cart_token "
                    f"WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL AND k.cart_token <> '' "
                    f"GROUP BY k.customer_id)")
        joins.append("LEFT JOIN fc ON fc.customer_id = m.customer_id")
    if self.top_sources:
        picks = []
        for alias, flag in self.top_sources.items():
            ctes.append(f"ts_{alias} AS (SELECT o.customer_id, o.source_name, row_number() OVER "
                        f"(PARTITION BY o.customer_id ORDER BY count(*) DESC, o.source_name COLLATE \"C\") AS rn "
                        f"{orders} AND o.source_name <> '' AND {flag} GROUP BY o.customer_id, o.source_name)")
            picks.append(alias)
        selected = ", ".join(f"max(CASE WHEN src = '{a}' THEN source_name END) AS {a}" for a in picks)
        union = " UNION ALL ".join(f"SELECT customer_id, source_name, '{a}' AS src FROM ts_{a} WHERE rn = 1"
                                   for a in picks)
        ctes.append(f"fs AS (SELECT customer_id, {selected} FROM ({union}) picked GROUP BY customer_id)")
        joins.append("LEFT JOIN fs ON fs.customer_id = m.customer_id")
    selected = ", ".join(f"{expression} AS {name}" for name, expression in columns.items())
    sql = (("WITH " + ", ".join(ctes) + " " if ctes else "")
           + f"SELECT m.customer_id{', ' + selected if selected else ''} FROM segments_customermetrics m "
           f"JOIN segments_customer c ON c.id = m.customer_id {' '.join(joins)} "
           f"WHERE m.shop_id = %(shop)s AND c.shop_id = %(shop)s AND c.deleted_at IS NULL")
    return sql, params


def legacy_dry_run(*, shop, rules, segment=None, now=None, sample: int = 10) -> dict:
    """segment_dry_run as it was before issue 14 (at 796ca20): the legacy statement run four times
    (the counts, then each sample), then the overlaps."""
    from django.db import connection
    from django.utils import timezone

    from segments.engine.compiler import Compiler
    from segments.engine.context import context_for
    from segments.engine.rules import describe, parse
    from segments.membership.definitions import _customer_card
    from segments.membership.overlap import segment_overlaps, shared_sql
    from segments.mirror.models import Customer

    ruleset = parse(rules)
    compiler = Compiler(context_for(shop, now or timezone.now()))
    predicate = compiler.ruleset(ruleset)
    member = "FALSE"
    if segment is not None:
        member = (f"EXISTS (SELECT 1 FROM segments_membership mem WHERE mem.segment_id = "
                  f"{compiler.param(segment.pk)} AND mem.customer_id = m.customer_id)")
    sql, params = legacy_statement(compiler, {"hit": f"CASE WHEN {predicate} THEN 1 ELSE 0 END",
                                              "was": f"CASE WHEN {member} THEN 1 ELSE 0 END"})
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT sum(hit), sum(CASE WHEN hit = 1 AND was = 0 THEN 1 ELSE 0 END), "
                       f"sum(CASE WHEN hit = 0 AND was = 1 THEN 1 ELSE 0 END), count(*) FROM ({sql}) x", params)
        size, entries, exits, evaluated = (value or 0 for value in cursor.fetchone())
        samples = {}
        for name, where in (("members", "hit = 1"), ("entries", "hit = 1 AND was = 0"),
                            ("exits", "hit = 0 AND was = 1")):
            cursor.execute(f"SELECT customer_id FROM ({sql}) x WHERE {where} ORDER BY customer_id LIMIT {sample}",
                           params)
            samples[name] = [row[0] for row in cursor.fetchall()]
        # the overlaps evaluated the statement once more
        cursor.execute(shared_sql(candidates=f"(SELECT customer_id FROM ({sql}) c WHERE hit = 1)",
                                  shop_param=compiler.param(shop.pk)), {**params, **compiler.params})
        shared = dict(cursor.fetchall())
    customers = {c.pk: c for c in Customer.objects.filter(shop=shop, pk__in={pk for v in samples.values() for pk in v})}
    overlaps = segment_overlaps(shop=shop, shared=shared, size=size,
                                exclude_segment_id=segment.pk if segment is not None else None)
    return {"size": size, "evaluated": evaluated, "entries": entries, "exits": exits,
            "overlaps": [o.to_dict() for o in overlaps], "summary": describe(ruleset),
            "sample": {name: [_customer_card(customers[pk]) for pk in pks if pk in customers]
                       for name, pks in samples.items()}}
