"""The demo's measurement step (devstore/management/commands/demo.py): what the segments are worth, the
month's review (experiences and offers included) and the shop's predictions, as the app reports them."""
from __future__ import annotations

import json

import httpx

# The merchant's answer to "margin assumed where a product has no cost" (Settings).
DEMO_DEFAULT_MARGIN = 40


class MeasurementSteps:
    """A mixin of the demo command: it uses the command's _say and _app_command."""

    def _default_margin(self, shop: str, env: dict[str, str]) -> None:
        """In Settings, the merchant assumes a margin for the products they never gave a cost (the admin's API)."""
        devstore = env["SHOPIFY_SHOP_BASE_URL"].split("/shops/")[0]
        with httpx.Client(timeout=30) as http:
            token = http.get(f"{devstore}/_control/shops/{shop}/session-token/{env['SHOPIFY_API_KEY']}").json()["token"]
            http.patch(f"{env['SHOPSEG_APP_URL']}/api/settings", headers={"Authorization": f"Bearer {token}"},
                       json={"default_margin_percent": DEMO_DEFAULT_MARGIN}).raise_for_status()
        self._say(f"   in Settings, the merchant assumes a {DEMO_DEFAULT_MARGIN}% margin for products without a unit cost")

    def _measurement(self, shop: str, env: dict[str, str]) -> None:
        self._default_margin(shop, env)
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
        store = review["store_profit"]
        if store.get("profit_per_customer") is not None:
            self._say(f"   profit this month (unit costs from Shopify): ${store['gross_profit']:,.2f} gross, "
                      f"${store['profit_per_customer']:,.2f} per customer")
            ranked = sorted((r for r in review["segments"] if r["profit"].get("profit_per_member") is not None),
                            key=lambda r: -r["profit"]["profit_per_member"])
            for row in ranked[:3]:
                visitor = row["profit"].get("profit_per_visitor")
                self._say(f"   {row['name']:<32} ${row['profit']['profit_per_member']:,.2f} per member"
                          + (f", ${visitor:,.2f} per visitor" if visitor is not None else ""))
            for lag in review["profit_lags"][:3]:
                self._say(f"   review: {lag['name']}: profit per member ${lag['profit_per_member']:,.2f}, below the "
                          f"store's ${lag['store_profit_per_customer']:,.2f} per customer")
        elif store:
            self._say(f"   profit not measured: {store['uncosted_lines']:,} order lines have no unit cost and no "
                      "default margin is set")
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
