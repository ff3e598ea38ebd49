"""Which shops are due for scheduled work at a given moment (the nightly recompute at each shop's
own local hour)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segments.mirror.models import BackfillStatus
from segments.shops.models import Shop, ShopStatus


def shops_due_for_nightly(*, now: dt.datetime) -> list[int]:
    """Installed shops with their history in whose `recompute_hour` is the current hour in their
    own time zone. Run hourly; one query per distinct time zone, not per shop. A DST change can
    repeat or skip a local hour once a year: that night runs twice or not at all, which the next
    night corrects."""
    shops = Shop.objects.filter(status=ShopStatus.INSTALLED, sync__backfill_status=BackfillStatus.DONE)
    due: list[int] = []
    for zone in shops.values_list("iana_timezone", flat=True).distinct():
        try:
            hour = now.astimezone(ZoneInfo(zone)).hour
        except (ZoneInfoNotFoundError, ValueError):
            hour = now.astimezone(dt.timezone.utc).hour
        due += shops.filter(iana_timezone=zone, recompute_hour=hour).values_list("pk", flat=True)
    return sorted(due)
