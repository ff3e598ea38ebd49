"""The reference's profit metrics (docs/rules.md; segments.engine.profit), in plain Python over the
customer's counted orders, their line items and the variants' unit costs."""
from __future__ import annotations

from decimal import Decimal

from segments.mirror.models import LineItem, Order


def profit_value(key: str, orders: list[Order], lines: dict[int, list[LineItem]],
                 costs: dict[int | None, Decimal | None], margin_percent: int) -> object:
    if key == "discount_cost":
        return sum((o.total_discounts for o in orders), Decimal(0))
    revenue = cost = uncosted = Decimal(0)
    missing = 0
    for order in orders:
        for line in lines.get(order.pk, []):
            line_revenue = line.price * line.quantity - line.total_discount
            revenue += line_revenue
            unit = costs.get(line.variant_id)
            if unit is None:
                missing += 1
                uncosted += line_revenue
            else:
                cost += unit * line.quantity
    refunds = sum((o.total_refunded for o in orders), Decimal(0))
    if margin_percent:
        profit = revenue - cost - uncosted * (1 - Decimal(margin_percent) / 100) - refunds
    elif missing:
        return None         # a line without a cost and no margin to assume: no gross profit
    else:
        profit = revenue - cost - refunds
    if key == "gross_profit":
        return profit
    base = revenue - refunds
    return float(profit / base) if base > 0 else None
