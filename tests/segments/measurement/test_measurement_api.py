"""The measurement API and pages over real session tokens: KPI series (JSON and CSV), lift,
migration and review; no token is a 401, another shop's segment a 404, bad parameters a 400."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db.models import F
from django.utils import timezone

from segments.measurement.models import SegmentKpiSnapshot
from segments.experiences.models import Offer
from segments.experiences.playbooks import playbook_update
from segments.measurement.lift import segment_lift
from segments.measurement.review import monthly_review
from segments.measurement.snapshots import kpi_snapshot_day, kpi_snapshots_backfill
from segments.membership.models import ExclusiveGroup, Membership, MembershipEvent
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.shops.calendar import shop_today
from tests.segments.measurement.conftest import Store, make_segment
from tests.segments.web.api.conftest import Api, mint
from tests.segments.web.pages.conftest import session_token

pytestmark = pytest.mark.django_db

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
REPEAT = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2}}


@pytest.fixture
def measured(installed_shop):
    """Buyers (30% holdout) and Repeat in one exclusive group; history, a move, snapshots."""
    shop, store = installed_shop, Store(installed_shop)
    today = shop_today(shop)
    store.customers(range(1, 41), created=store.local(today - dt.timedelta(days=100)))
    for sid in range(1, 31):
        store.order(sid, store.local(today - dt.timedelta(days=40 + sid)), "40.00")
    group = ExclusiveGroup.objects.create(shop=shop, name="Ladder")
    buyers = make_segment(shop, "Buyers", BUYERS, holdout_percent=30, group=group, priority=1)
    repeat = make_segment(shop, "Repeat", REPEAT, group=group, priority=2)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(today - dt.timedelta(days=20)))
    for sid in range(1, 11):     # ten buyers order again: they move up to Repeat
        store.order(sid, store.local(today - dt.timedelta(days=5)), "60.00")
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(today - dt.timedelta(days=5), 13))
    for segment in (buyers, repeat):
        kpi_snapshots_backfill(segment=segment, days=30)
    kpi_snapshot_day(shop=shop, day=today - dt.timedelta(days=1))
    shop.fixtures = {"buyers": buyers, "repeat": repeat, "group": group}
    return shop


@pytest.fixture
def api(client, devstore, settings, measured) -> Api:
    return Api(client, mint(devstore, measured.domain, settings.SHOPIFY_API_KEY))


def test_kpi_series_json_and_csv(api, measured):
    buyers = measured.fixtures["buyers"]
    body = api.get("/api/measurement/kpis", segments=f"{buyers.pk}").json()
    assert len(body["series"]) == 30 and {r["segment"] for r in body["series"]} == {buyers.pk}
    last = body["series"][-1]
    assert not last["backfilled"] and body["series"][0]["backfilled"]
    snap = SegmentKpiSnapshot.objects.get(segment=buyers, day=dt.date.fromisoformat(last["day"]))
    assert last["members"] == snap.members and last["conversion"] == (snap.buyers / snap.members if snap.members else None)
    csv = api.get("/api/measurement/kpis", export="csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().strip().splitlines()
    assert lines[0].startswith("segment,day,members") and len(lines) == 1 + 60


def test_migration_matrix_counts_the_move_up(api, measured):
    today = shop_today(measured)
    group = measured.fixtures["group"]
    buyers, repeat = measured.fixtures["buyers"], measured.fixtures["repeat"]
    body = api.get("/api/measurement/migration", group=group.pk, start=str(today - dt.timedelta(days=10)),
                   end=str(today - dt.timedelta(days=1))).json()
    cells = {(c["from"], c["to"]): c for c in body["cells"]}
    assert cells[(buyers.pk, repeat.pk)]["customers"] == 10
    assert cells[(buyers.pk, buyers.pk)]["customers"] == 20
    assert cells[(buyers.pk, repeat.pk)]["share"] == pytest.approx(10 / 30)
    upgrade = next(u for u in body["upgrades"] if u["segment"] == buyers.pk)
    assert upgrade["treated"] + upgrade["held_out"] == 30


def test_lift_and_review(api, measured):
    buyers = measured.fixtures["buyers"]
    today = shop_today(measured)
    lift = api.get(f"/api/segments/{buyers.pk}/lift", start=str(today - dt.timedelta(days=10)), end=str(today),
                   cuped="1").json()
    assert lift["treatment_members"] + lift["control_members"] == 30
    assert {"conversion", "revenue_per_member", "aov", "sample_ratio", "mde", "warnings"} <= set(lift)
    month = today.strftime("%Y-%m")
    review = api.get("/api/measurement/review", month=month).json()
    assert {r["name"] for r in review["segments"]} == {"Buyers", "Repeat"}
    assert any(t["name"] == "Repeat" for t in review["too_small"])
    md = api.get("/api/measurement/review", month=month, export="md")
    assert md.status_code == 200 and md.content.decode().startswith(f"# Monthly review {month}")


def test_bad_parameters_are_400s_and_nothing_is_written(api, measured):
    buyers = measured.fixtures["buyers"]
    before = SegmentKpiSnapshot.objects.count()
    for path, params in (("/api/measurement/kpis", {"start": "yesterday"}), ("/api/measurement/kpis", {"segments": "1;2"}),
                         ("/api/measurement/kpis", {"export": "xls"}),
                         (f"/api/segments/{buyers.pk}/lift", {"start": "2026-01-02", "end": "2026-01-01"}),
                         (f"/api/segments/{buyers.pk}/lift", {"cuped": "yes"}),
                         ("/api/measurement/review", {"month": "2026-13"})):
        response = api.get(path, **params)
        assert response.status_code == 400, (path, params)
        assert response.json()["error"]["code"] == "invalid_params"
    assert SegmentKpiSnapshot.objects.count() == before


def test_no_token_is_401_and_another_shops_rows_are_404(client, api, measured, other_shop):
    buyers = measured.fixtures["buyers"]
    assert client.get("/api/measurement/kpis").status_code == 401
    assert client.get(f"/api/segments/{buyers.pk}/lift").status_code == 401
    theirs = make_segment(other_shop, "Theirs", BUYERS, holdout_percent=10)
    group = ExclusiveGroup.objects.create(shop=other_shop, name="Theirs")
    assert api.get(f"/api/segments/{theirs.pk}/lift").status_code == 404
    assert api.get(f"/api/segments/{theirs.pk}/kpis").status_code == 404
    assert api.get("/api/measurement/kpis", segments=f"{buyers.pk},{theirs.pk}").status_code == 404
    assert api.get("/api/measurement/migration", group=group.pk).status_code == 404


def test_review_flags_overlapping_segments(measured):
    make_segment(measured, "Repeat again", REPEAT)
    segments_recompute(shop=measured)
    review = monthly_review(shop=measured, month=shop_today(measured).strftime("%Y-%m"))
    assert [set(o["names"]) for o in review.overlaps] == [{"Repeat", "Repeat again"}]


def test_migration_says_why_nothing_moved_or_why_it_is_empty(api, measured):
    today = shop_today(measured)
    group = measured.fixtures["group"]
    began = today - dt.timedelta(days=20)               # when membership was first computed

    def migration(start_days_ago: int, end_days_ago: int) -> dict:
        return api.get("/api/measurement/migration", group=group.pk, start=str(today - dt.timedelta(days=start_days_ago)),
                       end=str(today - dt.timedelta(days=end_days_ago))).json()

    moved = migration(10, 1)
    assert moved["moved"] == 10 and moved["empty_reason"] is None and moved["caveat"] is None
    assert moved["history_start"] == began.isoformat()
    still = migration(4, 1)                              # after the move up, nobody moved again
    assert still["moved"] == 0 and still["empty_reason"].startswith("No customer moved between segments")
    before = migration(30, 25)
    assert all(c["customers"] == 0 for c in before["cells"])
    assert before["empty_reason"] == (f"Membership history begins on {began:%b} {began.day}, {began.year}, when these "
                                      f"segments were first calculated: choose days from then on.")
    straddling = migration(25, 1)
    assert straddling["empty_reason"] is None and straddling["caveat"].startswith("Membership history begins on")


def test_the_review_page_writes_the_numbers_its_api_returns(api, measured, client, devstore, settings):
    month = (shop_today(measured) - dt.timedelta(days=1)).strftime("%Y-%m")     # yesterday's snapshot is in it
    review = api.get("/api/measurement/review", month=month).json()
    assert all(m["change"] for m in review["movers"])                   # an unchanged figure is not a mover
    row = next(r for r in review["segments"] if r["name"] == "Buyers")
    token = session_token(devstore, measured, settings.SHOPIFY_API_KEY)
    html = client.get("/admin/review", {"id_token": token, "shop": measured.domain, "month": month}).content.decode()
    shown = dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html.split("Buyers", 1)[1].split("</tr>", 1)[0]))
    assert shown["revenue"] == f"${row['kpis']['revenue']:,.2f}" and shown["members"] == f"{row['kpis']['members']:,}"
    assert shown["orders"] == f"{row['kpis']['orders']:,}"


def test_by_default_the_migration_starts_no_earlier_than_membership_history(api, measured, client, devstore,
                                                                             settings):
    """A month back would begin before these segments were first calculated (20 days ago), showing
    everyone arriving from None: the default first day is the day history begins."""
    today = shop_today(measured)
    group = measured.fixtures["group"]
    body = api.get("/api/measurement/migration", group=group.pk).json()
    assert body["start"] == (today - dt.timedelta(days=20)).isoformat() and body["caveat"] is None
    assert body["moved"] == 10
    chosen = api.get("/api/measurement/migration", group=group.pk, start=str(today - dt.timedelta(days=30))).json()
    assert chosen["start"] == (today - dt.timedelta(days=30)).isoformat() and chosen["caveat"]   # a choice stays


@pytest.mark.parametrize("params, name, message", [
    ({"start": "2026-13-01"}, "start", "must be a date of 2000 to 2099, like 2026-10-31"),
    ({"end": "yesterday"}, "end", "must be a date of 2000 to 2099, like 2026-10-31"),
    ({"start": "2026-10-02", "end": "2026-10-01"}, "start", "must not be after end"),
    ({"start": "2024-01-01", "end": "2026-10-01"}, "start", "must be at most 366 days before end"),
])
def test_the_kpi_page_and_api_read_a_period_the_same_way(api, measured, client, devstore, settings, params, name,
                                                        message):
    """One reading (segments.measurement.periods): the API refuses with a 400 naming the parameter,
    the page says the same words and shows the default 90 days."""
    error = api.get("/api/measurement/kpis", **params).json()["error"]
    assert error["problems"] == [{"path": name, "message": message}]
    token = session_token(devstore, measured, settings.SHOPIFY_API_KEY)
    html = client.get("/admin/measurement", {"id_token": token, "shop": measured.domain, **params}).content.decode()
    assert f"The period&#x27;s {name} {message}; showing the default period." in html
    yesterday = shop_today(measured) - dt.timedelta(days=1)
    shown = api.get("/api/measurement/kpis").json()
    assert (shown["start"], shown["end"]) == ((yesterday - dt.timedelta(days=89)).isoformat(), yesterday.isoformat())


def test_the_review_reports_each_experience_and_offer(api, measured, client, devstore, settings):
    buyers = measured.fixtures["buyers"]
    playbook_update(segment=buyers, changes={"experience": {"preset": "vip_hero"}, "kpi": "conversion"}, author="t")
    Offer.objects.create(shop=measured, segment=buyers, key="members_percent", code="BUYERS-MEMBERS", title="10%")
    store, today = Store(measured), shop_today(measured)
    # Members since long before any month start (the fixture's entries are 20 days old), so the month's
    # comparison has them whatever today's date.
    MembershipEvent.objects.filter(segment=buyers, at__lt=timezone.now() - dt.timedelta(days=10)).update(
        at=F("at") - dt.timedelta(days=40))
    stayed = list(Membership.objects.filter(segment=buyers, holdout=False, customer__shopify_id__gt=10)
                  .values_list("customer__shopify_id", flat=True))
    for sid in stayed[:3]:
        store.order(sid, store.local(today, 0, 5), "30.00", codes=("BUYERS-MEMBERS",))
    month = today.strftime("%Y-%m")
    compared = segment_lift(segment=buyers, start=today.replace(day=1), end=today).treatment_members
    assert compared >= len(stayed) > 3
    review = api.get("/api/measurement/review", month=month).json()
    (row,) = review["experiences"]            # Repeat has neither an experience nor an offer
    assert (row["name"], row["experience"], row["offer_codes"], row["kpi"]) == (
        "Buyers", "VIP hero", ["BUYERS-MEMBERS"], "conversion")
    assert row["redemption"]["treatment"] == pytest.approx(3 / compared) and row["redemption"]["control"] == 0
    assert row["lift"]["treatment"] is not None
    md = api.get("/api/measurement/review", month=month, export="md").content.decode()
    assert "- Buyers: VIP hero, codes BUYERS-MEMBERS; conversion " in md
    token = session_token(devstore, measured, settings.SHOPIFY_API_KEY)
    html = client.get("/admin/review", {"id_token": token, "shop": measured.domain, "month": month}).content.decode()
    table = html.split('id="experiences"', 1)[1].split("</table>", 1)[0]
    assert "VIP hero" in table and "BUYERS-MEMBERS" in table and f"{3 / compared:.1%}" in table
