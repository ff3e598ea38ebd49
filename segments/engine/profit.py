"""Gross profit, margin and discount cost of a customer's orders, for the compiler (a mixin like
browsing.BrowsingValues).

A line's revenue is its price times quantity less its discount; its cost, the variant's unit cost in
Shopify (segments_variantcost) times quantity. A customer's gross profit over a window is the
revenue of their lines less the costs and less their orders' refunds. A line without a cost takes
the shop's default margin (its revenue times 1 - margin) when the merchant set one; otherwise the
customer has no gross profit (the rule does not match), never a profit that silently counts the
line as free. Margin: gross profit over revenue less refunds. Discount cost: the orders' total
discounts. Orders as everywhere: not cancelled, with a customer.
"""
from __future__ import annotations

LINE_REVENUE = "(li.price * li.quantity - li.total_discount)"


class ProfitValues:
    def profit_feature(self, expression: str) -> str:
        """An aggregate over the customer's line items with their costs (`li`, `vc`; orders `o`)."""
        return "fp." + self._feature(self.profit_features, "p", expression)

    def _profit_value(self, key: str, flag: str) -> str:
        if key == "discount_cost":
            return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} THEN o.total_discounts ELSE 0 END)')}, 0)"
        revenue = f"COALESCE({self.profit_feature(f'sum(CASE WHEN {flag} THEN {LINE_REVENUE} ELSE 0 END)')}, 0)"
        costed = self.profit_feature(f"sum(CASE WHEN {flag} AND vc.unit_cost IS NOT NULL "
                                     f"THEN vc.unit_cost * li.quantity ELSE 0 END)")
        uncosted = self.profit_feature(f"sum(CASE WHEN {flag} AND vc.unit_cost IS NULL THEN {LINE_REVENUE} ELSE 0 END)")
        missing = self.profit_feature(f"count(*) FILTER (WHERE {flag} AND vc.unit_cost IS NULL)")
        refunds = f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} THEN o.total_refunded ELSE 0 END)')}, 0)"
        costs = f"COALESCE({costed}, 0)"
        if self.ctx.default_margin is not None:
            filled = f"COALESCE({uncosted}, 0) * {self.param(1 - self.ctx.default_margin)}"
            profit = f"({revenue} - {costs} - {filled} - {refunds})"
        else:
            profit = f"(CASE WHEN COALESCE({missing}, 0) = 0 THEN {revenue} - {costs} - {refunds} END)"
        if key == "gross_profit":
            return profit
        return self._share(profit, f"({revenue} - {refunds})")
