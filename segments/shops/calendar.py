"""A shop's calendar: its local day, which snapshots, charts, lift periods and reviews count in."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

from segments.shops.models import Shop


def shop_today(shop: Shop, now: dt.datetime | None = None) -> dt.date:
    """The shop's local calendar day at `now`."""
    return (now or timezone.now()).astimezone(ZoneInfo(shop.iana_timezone or "UTC")).date()


def shop_day_bounds(shop: Shop, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The shop-local day as a [start, end) range of aware datetimes (23 or 25 hours across DST)."""
    zone = ZoneInfo(shop.iana_timezone or "UTC")
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end
