"""The browsing metrics in SQL: values over the visitor-days `vd` of the customer's browsers (or of
the anonymous visitor alone), each an aggregate of the compiler's one pass over them (statement's
`fv`). Mixed into the Compiler, whose visit_feature, window_flag, param and _share it uses."""
from __future__ import annotations

from segments.engine.registry import VISIT_ARRIVALS, VISIT_COLUMNS, VISIT_TIMES, Metric
from segments.engine.rules import Condition


class BrowsingValues:
    def _browsing_value(self, condition: Condition) -> str:
        """Over the visitor-days of the customer's browsers; a day counts whole, by its first event
        (days are the shop's calendar days)."""
        key, in_window = condition.metric.key, self.window_flag("vd.first_at", condition.window)

        def total(expression: str) -> str:
            return f"COALESCE({self.visit_feature(f'sum(CASE WHEN {in_window} THEN {expression} ELSE 0 END)')}, 0)"

        match key:
            case _ if key in VISIT_COLUMNS:
                return total(f"vd.{VISIT_COLUMNS[key]}")
            case "checkouts_without_order":
                return f"GREATEST({total('vd.checkouts_started - vd.checkouts_completed')}, 0)"
            case "browse_to_buy":
                return self._share(total("vd.buying_sessions"), total("vd.sessions"))
            case "custom_events":
                event = self.param(str(condition.params["event"]))
                return total(f"COALESCE((vd.custom ->> {event})::bigint, 0)")
            case "first_landing_page":
                return self._day_value("landing_path", "TRUE", last=False)
            case "last_landing_page":
                return self._day_value("last_landing_path", "TRUE", last=True)
            case _ if key in VISIT_ARRIVALS:
                return self._day_value(VISIT_ARRIVALS[key], in_window, last=True)
        raise AssertionError(f"no SQL for browsing metric {key}")

    def _day_value(self, column: str, flag: str, *, last: bool) -> str:
        """A visitor-day column's non-blank value on the first (or last) day under `flag`, by the days'
        first events; ties go to the lowest (or highest) value by code point."""
        order = " DESC" if last else ""
        return self.visit_feature(f"(array_agg(vd.{column} ORDER BY vd.first_at{order}, vd.{column} COLLATE \"C\"{order})"
                                  f" FILTER (WHERE {flag} AND vd.{column} <> ''))[1]")

    def timestamp(self, metric: Metric) -> str:
        """SQL: the stored time a days-since or date metric reads."""
        if metric.key in VISIT_TIMES:
            return self.visit_feature("min(vd.first_at)" if VISIT_TIMES[metric.key] == "first" else "max(vd.last_at)")
        return f"m.{metric.column}"
