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
    def _order_sum(self, flag: str, expression: str) -> str:
        return f"COALESCE({self.order_feature(f'sum(CASE WHEN {flag} THEN {expression} ELSE 0 END)')}, 0)"

    def _profit_value(self, key: str, flag: str) -> str:
        # As few sums as the value needs (one for profit, two for margin): every sum is a state per
        # customer in the order pass, and a whole shop's pass holds a million customers.
        if key == "discount_cost":
            return self._order_sum(flag, "o.total_discounts")
        costed = "o.line_revenue - o.line_cost - o.total_refunded"
        if self.ctx.default_margin is not None:
            # Numeric arithmetic is exact: filling each order's uncosted revenue sums to the filled total.
            fill = self.param(1 - self.ctx.default_margin)
            profit = self._order_sum(flag, f"{costed} - o.uncosted_revenue * {fill}")
        else:
            profit = (f"(CASE WHEN {self._order_sum(flag, 'o.uncosted_lines')} = 0 "
                      f"THEN {self._order_sum(flag, costed)} END)")
        if key == "gross_profit":
            return profit
        return self._share(profit, self._order_sum(flag, "o.line_revenue - o.total_refunded"))

    def _predicted_profit(self) -> str:
        """The predicted value (`pr`) at the customer's own gross margin over all their orders."""
        return f"(pr.predicted_value * {self._profit_value('gross_margin', 'TRUE')})"
