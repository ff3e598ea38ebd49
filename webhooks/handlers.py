"""The explicit topic -> handler table. A handler gets (shop_domain, payload) and must be idempotent."""
from __future__ import annotations

from collections.abc import Callable

from segments.services.install import shop_uninstall

Handler = Callable[[str, dict], None]


def app_uninstalled(shop_domain: str, payload: dict) -> None:
    shop_uninstall(domain=shop_domain)


HANDLERS: dict[str, Handler] = {
    "app/uninstalled": app_uninstalled,
}

# Topics processed even when the shop is uninstalled or unknown (the law still applies).
ALWAYS_PROCESSED = {"app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"}
