"""Gross profit, margin and discount cost of a customer's orders, for the compiler (a mixin like
browsing.BrowsingValues).

Each order carries its lines' revenue after discounts, their cost of goods and what of its revenue has
no cost (segments.mirror.order_costs keeps them), so these are order features: sums in the order
pass every rule already makes, with no join of the line items to their costs. A customer's gross
profit over a window is that revenue less the costs and less their orders' refunds. A line without a
cost takes the shop's default margin (its revenue times 1 - margin) when the merchant set one;
otherwise the customer has no gross profit (the rule does not match), never a profit that silently
counts the line as free. Margin: gross profit over revenue less refunds. Discount cost: the orders'
total discounts. Orders as everywhere: not cancelled, with a customer. Predicted profit: the
predicted value over the next year at the customer's gross margin so far.
"""
from __future__ import annotations


class ProfitValues:
    def _order_sum(self, flag: str, column: str) -> str:
        return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} THEN o.{column} ELSE 0 END)')}, 0)"

    def _profit_value(self, key: str, flag: str) -> str:
        if key == "discount_cost":
            return self._order_sum(flag, "total_discounts")
        revenue, costs = self._order_sum(flag, "line_revenue"), self._order_sum(flag, "line_cost")
        refunds = self._order_sum(flag, "total_refunded")
        if self.ctx.default_margin is not None:
            filled = f"{self._order_sum(flag, 'uncosted_revenue')} * {self.param(1 - self.ctx.default_margin)}"
            profit = f"({revenue} - {costs} - {filled} - {refunds})"
        else:
            profit = f"(CASE WHEN {self._order_sum(flag, 'uncosted_lines')} = 0 THEN {revenue} - {costs} - {refunds} END)"
        if key == "gross_profit":
            return profit
        return self._share(profit, f"({revenue} - {refunds})")

    def _predicted_profit(self) -> str:
        """The predicted value (`pr`) at the customer's own gross margin over all their orders."""
        return f"(pr.predicted_value * {self._profit_value('gross_margin', 'TRUE')})"
