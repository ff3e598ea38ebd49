"""Which segments the KPI charts draw (the five largest until the merchant chooses, at most eight),
and the page computing the same numbers as its API through the same selector."""
from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest

from segments.measurement.kpis import DEFAULT_SERIES, MAX_SERIES, kpi_chart_segments, segments_largest
from segments.measurement.models import SegmentKpiSnapshot
from segments.shops.calendar import shop_today
from tests.segments.measurement.conftest import make_segment
from tests.segments.web.api.conftest import Api, mint
from tests.segments.web.pages.conftest import session_token

pytestmark = pytest.mark.django_db

NOBODY = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1000}}


def snapshot(segment, day: dt.date, members: int, **figures) -> SegmentKpiSnapshot:
    return SegmentKpiSnapshot.objects.create(shop=segment.shop, segment=segment, day=day, members=members, **figures)


@pytest.fixture
def sized(shop):
    """Ten segments whose latest snapshot (yesterday) has 10, 20, ... 100 members; the first one
    was bigger last week, and one more segment has no snapshot at all."""
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    segments = [make_segment(shop, f"S{i}", NOBODY) for i in range(10)]
    for i, segment in enumerate(segments):
        snapshot(segment, yesterday, 10 * (i + 1))
    snapshot(segments[0], yesterday - dt.timedelta(days=7), 5000)
    segments.append(make_segment(shop, "New", NOBODY))
    return segments, yesterday


def test_without_a_choice_the_charts_show_the_five_largest_by_their_latest_snapshot(shop, sized):
    segments, yesterday = sized
    chosen, note = kpi_chart_segments(shop=shop, segments=segments, chosen=None, end=yesterday)
    assert [s.name for s in chosen] == ["S9", "S8", "S7", "S6", "S5"] and DEFAULT_SERIES == 5 and note is None
    # As of last week only S0 had a snapshot: it comes first, the rest by age.
    week_ago = yesterday - dt.timedelta(days=7)
    assert [s.name for s in segments_largest(shop=shop, segments=segments, end=week_ago)] == ["S0", "S1", "S2", "S3", "S4"]


def test_a_choice_keeps_its_order_drops_unknown_ids_and_stops_at_eight(shop, other_shop, sized):
    segments, yesterday = sized
    theirs = make_segment(other_shop, "Theirs", NOBODY)
    picked = [segments[3].pk, theirs.pk, segments[1].pk, segments[3].pk]
    chosen, note = kpi_chart_segments(shop=shop, segments=segments, chosen=picked, end=yesterday)
    assert [s.name for s in chosen] == ["S3", "S1"] and note is None
    chosen, note = kpi_chart_segments(shop=shop, segments=segments, chosen=[s.pk for s in segments], end=yesterday)
    assert len(chosen) == MAX_SERIES and [s.name for s in chosen][:2] == ["S0", "S1"]
    assert note == f"The charts show up to {MAX_SERIES} segments at once; showing the first {MAX_SERIES} chosen."
    chosen, _ = kpi_chart_segments(shop=shop, segments=segments, chosen=[theirs.pk], end=yesterday)
    assert [s.name for s in chosen] == ["S9", "S8", "S7", "S6", "S5"]      # nothing usable: the default


def cells(html: str, segment_pk: int) -> dict[str, str]:
    row = re.search(rf'<tr data-segment="{segment_pk}">(.*?)</tr>', html, re.S).group(1)
    return {k: unescape(v) for k, v in re.findall(r'data-kpi="(\w+)">([^<]*)<', row)}


def test_the_kpi_page_writes_the_numbers_its_api_returns(client, devstore, settings, installed_shop):
    shop = installed_shop
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    a, b = make_segment(shop, "A", NOBODY), make_segment(shop, "B", NOBODY)
    snapshot(a, yesterday, 1200, holdout_members=130, buyers=44, orders=50, revenue="2468.10", store_revenue="9872.40",
             clv_total="98765.43", gross_profit="912.60")
    snapshot(b, yesterday, 10, gross_profit="-4.00")
    api = Api(client, mint(devstore, shop.domain, settings.SHOPIFY_API_KEY))
    row = next(r for r in api.get("/api/measurement/kpis", segments=f"{a.pk},{b.pk}").json()["series"]
               if r["segment"] == a.pk)
    token = session_token(devstore, shop, settings.SHOPIFY_API_KEY)
    html = client.get("/admin/measurement", {"id_token": token, "shop": shop.domain, "segments": str(b.pk)}
                      ).content.decode()
    shown = cells(html, a.pk)
    assert row["members"] == 1200 and shown["members"] == "1,200" and shown["holdout"] == "130"
    assert row["revenue"] == 2468.10 and shown["revenue"] == "$2,468.10"
    assert row["conversion"] == round(44 / 1200, 6) and shown["conversion"] == "3.67%"
    assert row["aov"] == 49.362 and shown["aov"] == "$49.36"
    assert row["avg_clv"] == round(98765.43 / 1200, 6) and shown["avg_clv"] == "$82.30"
    assert row["gross_profit"] == 912.60 and row["profit_per_member"] == round(912.60 / 1200, 6)
    # The chooser asked for B alone: one line per chart, and its checkbox is the one ticked.
    assert html.count('class="series"') == 5      # members, revenue, conversion, CLV, gross profit per member
    assert re.search(rf'value="{b.pk}" checked', html) and not re.search(rf'value="{a.pk}" checked', html)
