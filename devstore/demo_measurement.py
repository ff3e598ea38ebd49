"""The demo's measurement step (devstore/management/commands/demo.py): what the segments are worth, the
month's review (experiences and offers included) and the shop's predictions, as the app reports them."""
from __future__ import annotations

import json


class MeasurementSteps:
    """A mixin of the demo command: it uses the command's _say and _app_command."""

    def _measurement(self, shop: str, env: dict[str, str]) -> None:
        result = json.loads(self._app_command(env, "measurement", "--shop", shop, label="measurement"))
        for row in sorted(result["segments"], key=lambda r: -(r["share_30d"] or 0))[:5]:
            share = f"{row['share_30d']:.1%}" if row["share_30d"] is not None else "—"
            self._say(f"   {row['tag']:<30} {share:>6} of the last 30 days' revenue "
                      f"({row['days']} days of KPIs, {row['backfilled']} backfilled)")
        review = result["review"]
        for item in review["overlaps"][:2]:
            self._say(f"   review: {item['advice']}")
        for item in review["too_small"][:2]:
            self._say(f"   review: {item['name']}: {item['reason']}")
        for item in review["experiences"][:3]:
            diff = item["lift"]["diff"]
            self._say(f"   review: {item['name']}: {item['experience'] or 'offer'} "
                      f"({', '.join(item['offer_codes']) or 'no codes'}), {item['kpi']} treated vs held out: "
                      + (f"{diff:+.3g}" if diff is not None else "too few members to compare"))
        predictions = result["predictions"]
        if predictions["fitted"]:
            quality = predictions["quality"]
            self._say(f"   predictions: {predictions['customers']:,} buyers fitted and scored in {predictions['seconds']} s "
                      f"(BG/NBD and Gamma-Gamma, refitted nightly, rescored after each order)")
            if quality.get("enough"):
                self._say(f"   the models' quality: fitted without the last 90 days, they predicted "
                          f"{quality['predicted']:,.0f} orders from {quality['customers']:,} customers; "
                          f"{quality['actual']:,} happened")
            for band in predictions["bands"]:
                self._say(f"   {band['band']:<12} {band['customers']:>6,} buyers, predicted value next year "
                          f"${band['predicted_value_365d']:,.0f}")
