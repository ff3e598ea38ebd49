"""The evaluation context: what compiling a rule set needs besides the rules (the shop, the moment,
the shop's calendar, its premium price and order history), and the app's own tag prefix."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from segments.engine import metrics_table

OWNED_TAG_PREFIX = "seg:"   # the default prefix of the app's own tags; has_tag never matches the shop's
@dataclass(frozen=True)
class Context:
    """What evaluation needs besides the rules: the shop, the moment and the shop's calendar."""

    shop_id: int
    now: dt.datetime
    tz: str
    abandoned_before: dt.datetime
    premium_price: Decimal | None
    history: tuple[dt.datetime, dt.datetime] | None   # first and last order times of the shop's mirror
    tag_prefix: str = OWNED_TAG_PREFIX                 # the shop's own tags, which rules never read
    default_margin: Decimal | None = None              # the margin assumed for lines without a unit cost

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The UTC instant the shop's calendar day `day` begins."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)

    def days_ago(self, days: int) -> dt.datetime:
        """Midnight (shop time) `days` days before today; negative days are in the future."""
        return self.midnight(shift(self.today, -days))


def shift(day: dt.date, days: int) -> dt.date:
    # Clamped: a rule's 36,500 days must not step outside the calendar Python can name.
    ordinal = min(max(day.toordinal() + days, dt.date.min.toordinal() + 1), dt.date.max.toordinal() - 1)
    return dt.date.fromordinal(ordinal)


def context_for(shop, now: dt.datetime) -> Context:
    """The evaluation context of a shop at `now` (reads the shop's premium price and order span)."""
    breakpoints = metrics_table.shop_breakpoints(shop_id=shop.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(created_at), max(created_at) FROM segments_order WHERE shop_id = %s", [shop.pk])
        first, last = cursor.fetchone()
    history = (_aware(first), _aware(last)) if first is not None else None
    return Context(shop_id=shop.pk, now=now, tz=shop.iana_timezone or "UTC",
                   abandoned_before=now - dt.timedelta(minutes=shop.checkout_abandon_minutes),
                   premium_price=breakpoints.premium_price if breakpoints else None, history=history,
                   tag_prefix=(shop.tag_prefix or OWNED_TAG_PREFIX).lower(),
                   default_margin=Decimal(shop.default_margin_percent) / 100 if shop.default_margin_percent else None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
